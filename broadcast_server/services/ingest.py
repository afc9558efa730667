"""Store what clusters send (status, heartbeats, reports) in batches, each report exactly once.

Presence follows ``health.presence_rules``: status messages with the seq rule, heartbeats, and (in the
worker) a heartbeat timeout per cluster that fires at that cluster's own deadline. Every change of
presence is recorded in ``presence_event``. Broadcasts whose deliveries change are marked for the
statistics rollup job (``stats_dirty_broadcast``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, bindparam
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError, StatementError
from sqlmodel import Session, select

from broadcast_server.db.session import session_scope
from broadcast_server.domain.delivery import next_state
from broadcast_server.health.presence_rules import Outcome, PresenceState, on_heartbeat, on_status
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import (
    Cluster,
    ClusterState,
    Delivery,
    Heartbeat,
    PlaybackReport,
    PresenceEvent,
    ScheduledAiring,
    StatsDirtyBroadcast,
)
from broadcast_server.scheduling.airings import is_airing_id
from mqtt_contract import Channel
from mqtt_contract.times import parse_time

if TYPE_CHECKING:
    from broadcast_server.health.monitor import HealthMonitor

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    stored_reports: int = 0
    duplicate_reports: int = 0
    heartbeats: int = 0
    status_changes: int = 0
    stale_status: int = 0
    stale_heartbeats: int = 0
    presence_events: int = 0
    timeouts: int = 0
    unknown_cluster: int = 0
    batches: int = 0
    db_errors: int = 0
    refused_messages: int = 0  # valid by the contract but refused by the database (or the store): dropped alone
    unknown_ids: set[str] = field(default_factory=set)

    def add(self, other: IngestStats) -> None:
        """Count a stored attempt's figures in these (an attempt that failed is never added)."""
        for f in fields(self):
            if f.name != "unknown_ids":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.unknown_ids |= other.unknown_ids


def _database_away(exc: SQLAlchemyError) -> bool:
    """Whether a failure is the database's (retry the batch), not a message's own data (isolate it).

    DataError and IntegrityError come from a value the database refuses; a bare StatementError from a value
    that could not even be sent. Anything else (connection lost, locked, timed out) is the database's.
    """
    return not isinstance(exc, (DataError, IntegrityError)) and type(exc) is not StatementError


@dataclass(frozen=True)
class PresenceChange:
    """A presence transition recorded in ``presence_event``."""

    cluster_id: str
    online: bool
    at: datetime
    cause: str
    seq: int


@dataclass
class BatchResult:
    """What a stored batch means for fleet health: transitions, and heartbeats of live connections."""

    changes: list[PresenceChange] = field(default_factory=list)
    heartbeats: dict[str, datetime] = field(default_factory=dict)  # cluster id -> latest heartbeat received


def _opt_time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


def apply_presence(
    session: Session,
    state: ClusterState | StateRow,
    outcome: Outcome,
    at: datetime,
    result: BatchResult,
    stats: IngestStats,
) -> None:
    """Write a presence outcome to ``state`` and record its transitions as events."""
    after, changes = outcome
    for change in changes:
        session.add(
            PresenceEvent(cluster_id=state.cluster_id, online=change.online, at=at, cause=change.cause, seq=change.seq)
        )
        result.changes.append(PresenceChange(state.cluster_id, change.online, at, change.cause, change.seq))
        stats.presence_events += 1
    if changes or after.seq != state.seq:
        stats.status_changes += 1
    if changes:
        state.changed_at = at
    state.online, state.seq, state.cause = after.online, after.seq, after.cause


def mark_broadcasts_dirty(session: Session, broadcast_ids: set[str], at: datetime) -> None:
    """Tell the rollup job these broadcasts' (or scheduled airings') figures changed."""
    if not broadcast_ids:
        return
    existing = {
        row.broadcast_id: row
        for row in session.exec(
            select(StatsDirtyBroadcast).where(StatsDirtyBroadcast.broadcast_id.in_(broadcast_ids))  # type: ignore[attr-defined]
        )
    }
    for broadcast_id in broadcast_ids:
        row = existing.get(broadcast_id)
        if row is None:
            session.add(StatsDirtyBroadcast(broadcast_id=broadcast_id, marked_at=at))
        else:
            row.marked_at = at
            session.add(row)


_STATE = ClusterState.__table__
_HEARTBEAT = Heartbeat.__table__
_REPORT = PlaybackReport.__table__
_DELIVERY = Delivery.__table__
_AIRING = ScheduledAiring.__table__
_STATE_COLUMNS = tuple(c.name for c in _STATE.columns)
# One UPDATE per batch for every cluster whose state changed (executemany), keyed by its primary key.
_UPDATE_STATE = (
    _STATE.update()
    .where(_STATE.c.cluster_id == bindparam("b_cluster_id"))
    .values({name: bindparam(name) for name in _STATE_COLUMNS if name != "cluster_id"})
)
_UPDATE_DELIVERY = (
    _DELIVERY.update()
    .where(_DELIVERY.c.id == bindparam("b_id"))
    .values(state=bindparam("state"), updated_at=bindparam("updated_at"))
)


@dataclass(slots=True)
class StateRow:
    """A ``cluster_state`` row as plain data: a batch changes hundreds of them, written in one statement.

    Plain rows and Core statements instead of ORM objects: the ORM's per-object bookkeeping was most of
    the time ingest took per message (bench/ingest.py, docs/benchmarks.md).
    """

    cluster_id: str
    online: bool = False
    seq: int = 0
    changed_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_error: str | None = None
    firmware: str | None = None
    cause: str | None = None
    last_heartbeat_at: datetime | None = None
    last_error_at: datetime | None = None
    amplifier: str | None = None
    clock_offset_s: float | None = None

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _STATE_COLUMNS}


if {f.name for f in fields(StateRow)} != set(_STATE_COLUMNS):  # a column added to the model and not here
    raise RuntimeError("StateRow does not match the cluster_state table's columns")


def store_batch(session: Session, items: Sequence[Incoming], stats: IngestStats) -> BatchResult:
    """Apply one batch of decoded messages in the caller's transaction; return what changed in presence."""
    result = BatchResult()
    connection = session.connection()
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
        row.cluster_id: StateRow(**row._mapping)
        for row in connection.execute(_STATE.select().where(_STATE.c.cluster_id.in_(known)))
    }
    created: set[str] = set()
    changed: set[str] = set()

    def state_of(cluster_id: str, at: datetime) -> StateRow:
        state = states.get(cluster_id)
        if state is None:
            state = StateRow(cluster_id=cluster_id, changed_at=at, last_seen_at=at)
            states[cluster_id] = state
            created.add(cluster_id)
        changed.add(cluster_id)
        return state

    reports = [i for i in items if i.channel is Channel.REPORT]
    report_ids = [i.message["id"] for i in reports]
    seen = set(connection.execute(select(_REPORT.c.id).where(_REPORT.c.id.in_(report_ids))).scalars())
    new_reports: list[dict[str, object]] = []
    for item in reports:
        m = item.message
        if m["id"] in seen:
            stats.duplicate_reports += 1
            continue
        seen.add(m["id"])
        new_reports.append(
            {
                "id": m["id"],
                "cluster_id": item.cluster_id,
                "command_id": m["command_id"],
                "broadcast_id": m.get("broadcast_id"),
                "status": m["status"],
                "reported_at": parse_time(m["ts"]),
                "received_at": datetime.fromtimestamp(item.received_at, UTC),
                "started_at": _opt_time(m.get("started_at")),
                "ended_at": _opt_time(m.get("ended_at")),
                "played_s": m.get("played_s"),
                "late_s": m.get("late_s"),
                "reason": m.get("reason"),
            }
        )
    if new_reports:
        connection.execute(_REPORT.insert(), new_reports)
    stats.stored_reports += len(new_reports)
    changed_broadcasts: set[str] = set()
    if new_reports:
        command_ids = {r["command_id"] for r in new_reports}
        deliveries = {
            row.command_id: [row.id, row.cluster_id, row.broadcast_id, row.state]
            for row in connection.execute(
                select(
                    _DELIVERY.c.id,
                    _DELIVERY.c.command_id,
                    _DELIVERY.c.cluster_id,
                    _DELIVERY.c.broadcast_id,
                    _DELIVERY.c.state,
                ).where(_DELIVERY.c.command_id.in_(command_ids))
            )
        }
        updates: dict[int, dict[str, object]] = {}
        scheduled = {c for c in command_ids if c not in deliveries and is_airing_id(c)}  # type: ignore[arg-type]
        if scheduled:  # a scheduled airing's outcome: its rollup is recomputed from the reports
            changed_broadcasts.update(
                connection.execute(select(_AIRING.c.id).where(_AIRING.c.id.in_(scheduled))).scalars()
            )
        for report in new_reports:  # in arrival order: the first outcome of a command stands
            delivery = deliveries.get(report["command_id"])  # type: ignore[arg-type]
            if delivery is None:
                continue  # a scheduled item, a ping, a stop, or a command of a broadcast not held here
            delivery_id, delivery_cluster, broadcast_id, current = delivery
            if report["cluster_id"] != delivery_cluster:
                log.warning(
                    "report %s from %s names a command of %s; ignored for delivery",
                    report["id"],
                    report["cluster_id"],
                    delivery_cluster,
                )
                continue
            state = next_state(current, report["status"])  # type: ignore[arg-type]
            if state is not None:
                delivery[3] = state
                updates[delivery_id] = {"b_id": delivery_id, "state": state, "updated_at": report["received_at"]}
                changed_broadcasts.add(broadcast_id)
        if updates:
            connection.execute(_UPDATE_DELIVERY, list(updates.values()))
    mark_broadcasts_dirty(session, changed_broadcasts, datetime.now(UTC))

    heartbeats: list[dict[str, object]] = []
    for item in items:
        at = datetime.fromtimestamp(item.received_at, UTC)
        m = item.message
        if item.channel is Channel.HEARTBEAT:
            # An agent without NTP cannot know its own offset; the server estimates it from the heartbeat's
            # time against its own receive time (network delay included: seconds, not milliseconds, matter).
            sent_at = parse_time(m["ts"])
            offset = m.get("clock_offset_s")
            if offset is None:
                offset = round((sent_at - at).total_seconds(), 3)
            heartbeats.append(
                {
                    "cluster_id": item.cluster_id,
                    "sent_at": sent_at,
                    "received_at": at,
                    "seq": m["seq"],
                    "uptime_s": m["uptime_s"],
                    "firmware": m.get("firmware"),
                    "volume": m.get("volume"),
                    "amplifier": m.get("amplifier"),
                    "playing": m.get("playing"),
                    "cache_free_bytes": m.get("cache_free_bytes"),
                    "link_rssi_dbm": m.get("link_rssi_dbm"),
                    "clock_offset_s": offset,
                    "last_error": m.get("last_error"),
                }
            )
            stats.heartbeats += 1
            state = state_of(item.cluster_id, at)
            outcome = on_heartbeat(PresenceState(state.online, state.seq, state.cause), m["seq"])
            if outcome is None:
                stats.stale_heartbeats += 1  # from an older connection, delivered late: says nothing of now
                continue
            apply_presence(session, state, outcome, at, result, stats)
            state.last_seen_at = max(state.last_seen_at, at) if state.last_seen_at else at
            state.last_heartbeat_at = max(state.last_heartbeat_at, at) if state.last_heartbeat_at else at
            if m.get("last_error") and m.get("last_error") != state.last_error:
                state.last_error_at = at
            state.last_error = m.get("last_error")
            state.firmware = m.get("firmware")
            state.amplifier = m.get("amplifier")
            state.clock_offset_s = offset
            if state.online:
                result.heartbeats[item.cluster_id] = at
        elif item.channel is Channel.STATUS:
            state = state_of(item.cluster_id, at)
            outcome = on_status(
                PresenceState(state.online, state.seq, state.cause), m["state"], m["seq"], has_ts="ts" in m
            )
            if outcome is None:
                stats.stale_status += 1
                continue
            apply_presence(session, state, outcome, at, result, stats)
            state.last_seen_at = max(state.last_seen_at, at) if state.last_seen_at else at
            if m.get("firmware"):
                state.firmware = m["firmware"]
        elif item.channel is Channel.REPORT:
            state = state_of(item.cluster_id, at)
            state.last_seen_at = max(state.last_seen_at, at) if state.last_seen_at else at
    if heartbeats:
        connection.execute(_HEARTBEAT.insert(), heartbeats)
    if created:
        connection.execute(_STATE.insert(), [states[c].values() for c in created])
    updated = [{"b_cluster_id": c, **states[c].values()} for c in changed - created]
    if updated:
        connection.execute(_UPDATE_STATE, updated)
    return result


class IngestWorker:
    """Drains the bus's event queue into the database; a failing database delays, never drops, a batch.

    The same thread runs fleet health (``health``): each cluster's heartbeat timeout fires at its own
    deadline (the queue wait is cut short for it), and alerts are evaluated on every change and on time.
    Without ``health``, one is built from the environment (``BCAST_HEARTBEAT_INTERVAL_S``,
    ``BCAST_HEALTH_*``) unless ``default_health`` is False.
    """

    def __init__(
        self,
        engine: Engine,
        events: queue.Queue[Incoming],
        *,
        batch_size: int = 5000,
        max_wait_s: float = 0.1,
        health: HealthMonitor | None = None,
        default_health: bool = True,
        acknowledge: Callable[[Iterable[int]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.events = events
        self.acknowledge = acknowledge  # the bus's: a message is acknowledged to the broker once stored
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.stats = IngestStats()
        if health is None and default_health:
            from broadcast_server.health.monitor import HealthMonitor

            health = HealthMonitor.from_environment(engine)
        self.health = health
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store what is already queued, then stop."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self.health is not None:
            self.health.close()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until the queue is empty and the last batch is stored (for tests and the demo)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events.empty() and self._idle.is_set():
                return True
            time.sleep(0.02)
        return False

    def _wait_s(self) -> float:
        """How long the queue may be waited on: until the next health deadline, at most 0.2 s."""
        if self.health is None:
            return 0.2
        wakeup = self.health.next_wakeup()
        if wakeup is None:
            return 0.2
        return min(0.2, max(0.005, wakeup - time.time()))

    def _run(self) -> None:
        while True:
            self._idle.set()
            try:
                first = self.events.get(timeout=self._wait_s())
            except queue.Empty:
                self._run_health()
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
            result = self._store_with_retry(batch)
            if result is not None and self.acknowledge is not None:
                self.acknowledge(item.mid for item in batch)
            if result is not None and self.health is not None:
                self.health.after_batch(result)
            self._run_health()

    def _run_health(self) -> None:
        if self.health is None:
            return
        try:
            self.stats.timeouts += len(self.health.run_due(time.time()))
        except SQLAlchemyError as exc:
            self.stats.db_errors += 1
            log.error("fleet health check failed, retried on the next turn: %s", exc)

    def _store_with_retry(self, batch: list[Incoming]) -> BatchResult | None:
        """Store the batch, waiting out the database; a message the store refuses is found by halving and dropped.

        A malformed message that passed its schema (a number too large for a column, a string PostgreSQL
        cannot hold) must neither stop the worker nor hold every later message back behind it.
        """
        try:
            return self._store_waiting(batch)
        except Exception as exc:  # noqa: BLE001 - whatever the message did, the rest of the batch is stored
            if len(batch) == 1:
                self.stats.refused_messages += 1
                item = batch[0]
                log.error("%s from %s cannot be stored, dropped: %r", item.channel.value, item.cluster_id, exc)
                return BatchResult()
        half = len(batch) // 2
        first = self._store_with_retry(batch[:half])
        second = self._store_with_retry(batch[half:]) if first is not None else None
        if first is None or second is None:
            return None
        first.changes += second.changes
        first.heartbeats.update(second.heartbeats)
        return first

    def _store_waiting(self, batch: list[Incoming]) -> BatchResult | None:
        """Store the batch in one transaction, retried with backoff while the database is away."""
        delay = 0.5
        while True:
            attempt = IngestStats(unknown_ids=set(self.stats.unknown_ids))
            try:
                with session_scope(self.engine) as session:
                    result = store_batch(session, batch, attempt)
                self.stats.add(attempt)
                self.stats.batches += 1
                return result
            except SQLAlchemyError as exc:
                if not _database_away(exc):
                    raise
                self.stats.db_errors += 1
                log.error("ingest batch of %d failed, retrying in %.1fs: %s", len(batch), delay, exc)
                if self._stop.wait(delay) and self.stats.db_errors > 50:
                    log.error("ingest stopping with %d messages unstored", len(batch))
                    return None
                delay = min(30.0, delay * 2)
