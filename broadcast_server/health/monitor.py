"""Fleet health at run time: heartbeat timeouts on a deadline heap, and alerts, inside the ingest thread.

Running in the ingest worker's thread keeps one writer for presence, so a heartbeat and the timeout it
cancels can never race. The worker waits on its queue only until the next deadline, so a cluster goes
offline at its own deadline (last heartbeat + timeout), not on a periodic scan.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.health.alerts import Alert, AlertEngine, AlertPolicy
from broadcast_server.health.deadlines import DeadlineHeap
from broadcast_server.health.presence_rules import PresenceState, on_timeout
from broadcast_server.models import ClusterState
from broadcast_server.services.ingest import BatchResult, IngestStats, PresenceChange, apply_presence
from broadcast_server.statistics.grouping import cluster_reporting_units, unit_labels

log = logging.getLogger(__name__)

AlertSink = Callable[[Alert], None]


def log_alert(alert: Alert) -> None:
    log.warning("alert %s: %s", alert.kind, alert.message)


class HealthMonitor:
    """Heartbeat timeouts and alerts. Not thread-safe: call it from one thread (the ingest worker)."""

    def __init__(
        self,
        engine: Engine,
        *,
        heartbeat_timeout_s: float,
        policy: AlertPolicy | None = None,
        sink: AlertSink | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.timeout = timedelta(seconds=heartbeat_timeout_s)
        self.policy = policy or AlertPolicy()
        self.sink = sink or log_alert
        self.deadlines = DeadlineHeap()
        self.alerts: AlertEngine | None = None
        self.recent_alerts: deque[Alert] = deque(maxlen=200)
        self.stats = IngestStats()
        self._on_close = on_close
        self._loaded = False

    @classmethod
    def from_environment(cls, engine: Engine, *, heartbeat_interval_s: float | None = None) -> HealthMonitor:
        """Timeout = ``BCAST_HEALTH_MISSED_HEARTBEATS`` x the heartbeat interval; webhook if set.

        The interval is the server's setting when given (the runtime passes its own), else
        ``BCAST_HEARTBEAT_INTERVAL_S``."""
        from broadcast_server.health.config import get_health_settings
        from broadcast_server.health.webhook import WebhookSender
        from broadcast_server.settings import get_settings

        health = get_health_settings()
        sender = WebhookSender(health.webhook_url) if health.webhook_url else None

        def sink(alert: Alert) -> None:
            log_alert(alert)
            if sender is not None:
                sender(alert)

        return cls(
            engine,
            heartbeat_timeout_s=health.missed_heartbeats
            * (heartbeat_interval_s if heartbeat_interval_s is not None else get_settings().heartbeat_interval_s),
            policy=health.alert_policy(),
            sink=sink,
            on_close=sender.close if sender else None,
        )

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    # ------------------------------------------------------------------ loading

    def load(self, now: float | None = None) -> None:
        """Arm a deadline for every cluster now online, and the alert state, from the database.

        A server that was not listening cannot hold missed heartbeats against anyone: each online cluster
        gets a full timeout from now.
        """
        at = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        with session_scope(self.engine) as session:
            states = list(session.exec(select(ClusterState)))
            commune_of = self._commune_labels(session)
        for state in states:
            if state.online:
                last = max(filter(None, (state.last_heartbeat_at, state.changed_at, at)))
                self.deadlines.set(state.cluster_id, (last + self.timeout).timestamp())
        self.alerts = AlertEngine(
            self.policy,
            commune_of,
            online=[s.cluster_id for s in states if s.online],
            offline_since={s.cluster_id: s.changed_at for s in states if not s.online},
            now=at,
        )
        self._loaded = True

    @staticmethod
    def _commune_labels(session) -> dict[str, str]:
        unit_of, units = cluster_reporting_units(session)
        labels = unit_labels(units, unit_of.values())
        return {cluster_id: labels[unit_id] for cluster_id, unit_id in unit_of.items()}

    def _ensure_known(self, cluster_ids: Iterable[str], at: datetime) -> None:
        assert self.alerts is not None
        unknown = [c for c in cluster_ids if c not in self.alerts.communes]
        if not unknown:
            return
        with session_scope(self.engine) as session:
            labels = self._commune_labels(session)
        for cluster_id in unknown:
            if cluster_id in labels:
                self.alerts.add_cluster(cluster_id, labels[cluster_id], at)

    # ------------------------------------------------------------------ inputs

    def after_batch(self, result: BatchResult) -> None:
        """Move deadlines for the batch's heartbeats and transitions; feed transitions to the alerts."""
        if not self._loaded:
            self.load()
        for change in result.changes:
            if change.online:
                self.deadlines.set(change.cluster_id, (change.at + self.timeout).timestamp())
            else:
                self.deadlines.discard(change.cluster_id)
        for cluster_id, at in result.heartbeats.items():
            self.deadlines.set(cluster_id, (at + self.timeout).timestamp())
        self._alert_on(result.changes)

    def _alert_on(self, changes: list[PresenceChange]) -> None:
        assert self.alerts is not None
        if not changes:
            return
        self._ensure_known({c.cluster_id for c in changes}, changes[0].at)
        # A reconnect is an offline and an online at the same instant: nothing was lost, nothing to say.
        final: dict[str, PresenceChange] = {}
        for change in changes:
            final[change.cluster_id] = change
        for change in changes:
            if final[change.cluster_id] is not change and change.at == final[change.cluster_id].at:
                continue
            for alert in self.alerts.on_change(change.cluster_id, change.online, change.at):
                self._send(alert)

    def _send(self, alert: Alert) -> None:
        self.recent_alerts.append(alert)
        try:
            self.sink(alert)
        except Exception:  # an alert channel must never stop ingest
            log.exception("alert sink failed for %s", alert.kind)

    # ------------------------------------------------------------------ time

    def next_wakeup(self) -> float | None:
        """Epoch seconds of the next deadline (a heartbeat timeout or an alert), or None."""
        if not self._loaded:
            return time.time()
        times = [t for t in (self.deadlines.next_time(),) if t is not None]
        if self.alerts is not None:
            wakeup = self.alerts.next_wakeup()
            if wakeup is not None:
                times.append(wakeup.timestamp())
        return min(times) if times else None

    def run_due(self, now: float) -> list[PresenceChange]:
        """Time out the clusters whose deadline passed (checked against the database), then due alerts."""
        if not self._loaded:
            self.load(now)
        at = datetime.fromtimestamp(now, UTC)
        due = self.deadlines.pop_due(now)
        result = BatchResult()
        if due:
            try:
                with session_scope(self.engine) as session:
                    states = session.exec(select(ClusterState).where(ClusterState.cluster_id.in_(due)))  # type: ignore[attr-defined]
                    for state in states:
                        if not state.online:
                            continue
                        last = max(filter(None, (state.last_heartbeat_at, state.changed_at)))
                        if last + self.timeout > at:  # a heartbeat we had not been told of
                            self.deadlines.set(state.cluster_id, (last + self.timeout).timestamp())
                            continue
                        outcome = on_timeout(PresenceState(state.online, state.seq, state.cause))
                        apply_presence(session, state, outcome, at, result, self.stats)
                        session.add(state)
            except Exception:
                for cluster_id in due:  # try again shortly rather than forget them
                    self.deadlines.set(cluster_id, now + 1.0)
                raise
        if result.changes:
            log.info("heartbeat timeout: %d clusters offline", len(result.changes))
            self._alert_on(result.changes)
        if self.alerts is not None:
            for alert in self.alerts.due(at):
                self._send(alert)
        return result.changes
