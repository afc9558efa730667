"""Store what clusters send (status, heartbeats, reports) in batches, each report exactly once."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from broadcast_server.db.session import session_scope
from broadcast_server.domain.delivery import next_state
from broadcast_server.domain.presence import Presence, apply_status
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import Cluster, ClusterState, Delivery, Heartbeat, PlaybackReport
from mqtt_contract import Channel
from mqtt_contract.times import parse_time

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    stored_reports: int = 0
    duplicate_reports: int = 0
    heartbeats: int = 0
    status_changes: int = 0
    stale_status: int = 0
    unknown_cluster: int = 0
    batches: int = 0
    db_errors: int = 0
    unknown_ids: set[str] = field(default_factory=set)


def _opt_time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


def store_batch(session: Session, items: Sequence[Incoming], stats: IngestStats) -> None:
    """Apply one batch of decoded messages in the caller's transaction."""
    cluster_ids = {item.cluster_id for item in items}
    known = set(session.exec(select(Cluster.id).where(Cluster.id.in_(cluster_ids))).all())  # type: ignore[attr-defined]
    unknown = cluster_ids - known
    if unknown:
        stats.unknown_cluster += sum(1 for i in items if i.cluster_id in unknown)
        new = unknown - stats.unknown_ids
        if new:
            log.warning("messages from clusters not in the fleet, dropped: %s", sorted(new)[:10])
            stats.unknown_ids |= new
    items = [i for i in items if i.cluster_id in known]
    states = {
        s.cluster_id: s
        for s in session.exec(select(ClusterState).where(ClusterState.cluster_id.in_(known)))  # type: ignore[attr-defined]
    }

    def state_of(cluster_id: str, at: datetime) -> ClusterState:
        state = states.get(cluster_id)
        if state is None:
            state = ClusterState(cluster_id=cluster_id, online=False, seq=0, changed_at=at, last_seen_at=at)
            session.add(state)
            states[cluster_id] = state
        return state

    reports = [i for i in items if i.channel is Channel.REPORT]
    report_ids = [i.message["id"] for i in reports]
    seen = set(session.exec(select(PlaybackReport.id).where(PlaybackReport.id.in_(report_ids))).all())  # type: ignore[attr-defined]
    new_reports: list[PlaybackReport] = []
    for item in reports:
        m = item.message
        if m["id"] in seen:
            stats.duplicate_reports += 1
            continue
        seen.add(m["id"])
        new_reports.append(
            PlaybackReport(
                id=m["id"],
                cluster_id=item.cluster_id,
                command_id=m["command_id"],
                broadcast_id=m.get("broadcast_id"),
                status=m["status"],
                reported_at=parse_time(m["ts"]),
                received_at=datetime.fromtimestamp(item.received_at, UTC),
                started_at=_opt_time(m.get("started_at")),
                ended_at=_opt_time(m.get("ended_at")),
                played_s=m.get("played_s"),
                late_s=m.get("late_s"),
                reason=m.get("reason"),
            )
        )
    session.add_all(new_reports)
    stats.stored_reports += len(new_reports)
    if new_reports:
        command_ids = {r.command_id for r in new_reports}
        deliveries = {
            d.command_id: d
            for d in session.exec(select(Delivery).where(Delivery.command_id.in_(command_ids)))  # type: ignore[attr-defined]
        }
        for report in new_reports:  # in arrival order: the first outcome of a command stands
            delivery = deliveries.get(report.command_id)
            if delivery is None:
                continue  # a ping, a stop, or a command of a broadcast this database does not hold
            if report.cluster_id != delivery.cluster_id:
                log.warning(
                    "report %s from %s names a command of %s; ignored for delivery",
                    report.id,
                    report.cluster_id,
                    delivery.cluster_id,
                )
                continue
            state = next_state(delivery.state, report.status)
            if state is not None:
                delivery.state = state
                delivery.updated_at = report.received_at
                session.add(delivery)

    for item in items:
        at = datetime.fromtimestamp(item.received_at, UTC)
        m = item.message
        if item.channel is Channel.HEARTBEAT:
            session.add(
                Heartbeat(
                    cluster_id=item.cluster_id,
                    sent_at=parse_time(m["ts"]),
                    received_at=at,
                    seq=m["seq"],
                    uptime_s=m["uptime_s"],
                    firmware=m.get("firmware"),
                    volume=m.get("volume"),
                    amplifier=m.get("amplifier"),
                    playing=m.get("playing"),
                    cache_free_bytes=m.get("cache_free_bytes"),
                    link_rssi_dbm=m.get("link_rssi_dbm"),
                    clock_offset_s=m.get("clock_offset_s"),
                    last_error=m.get("last_error"),
                )
            )
            stats.heartbeats += 1
            state = state_of(item.cluster_id, at)
            state.last_seen_at = max(state.last_seen_at, at)
            state.last_error = m.get("last_error")
            state.firmware = m.get("firmware")
        elif item.channel is Channel.STATUS:
            state = state_of(item.cluster_id, at)
            after = apply_status(Presence(state.online, state.seq), m["state"], m["seq"])
            if after is None:
                stats.stale_status += 1
                continue
            if after.online != state.online or after.seq != state.seq:
                stats.status_changes += 1
                state.changed_at = at
            state.online, state.seq = after.online, after.seq
            state.last_seen_at = max(state.last_seen_at, at)
            if m.get("firmware"):
                state.firmware = m["firmware"]
        elif item.channel is Channel.REPORT:
            state = state_of(item.cluster_id, at)
            state.last_seen_at = max(state.last_seen_at, at)


class IngestWorker:
    """Drains the bus's event queue into the database; a failing database delays, never drops, a batch."""

    def __init__(
        self, engine: Engine, events: queue.Queue[Incoming], *, batch_size: int = 500, max_wait_s: float = 0.1
    ) -> None:
        self.engine = engine
        self.events = events
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.stats = IngestStats()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store what is already queued, then stop."""
        self._stop.set()
        self._thread.join(timeout_s)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until the queue is empty and the last batch is stored (for tests and the demo)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events.empty() and self._idle.is_set():
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        while True:
            self._idle.set()
            try:
                first = self.events.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._idle.clear()
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.batch_size:
                try:
                    batch.append(self.events.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._store_with_retry(batch)

    def _store_with_retry(self, batch: list[Incoming]) -> None:
        delay = 0.5
        while True:
            try:
                with session_scope(self.engine) as session:
                    store_batch(session, batch, self.stats)
                self.stats.batches += 1
                return
            except SQLAlchemyError as exc:
                self.stats.db_errors += 1
                log.error("ingest batch of %d failed, retrying in %.1fs: %s", len(batch), delay, exc)
                if self._stop.wait(delay) and self.stats.db_errors > 50:
                    log.error("ingest stopping with %d messages unstored", len(batch))
                    return
                delay = min(30.0, delay * 2)
