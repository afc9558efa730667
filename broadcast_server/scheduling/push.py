"""Send each cluster its schedule window ahead of time, and again whenever it changes or runs short."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import Cluster, ClusterSchedule
from broadcast_server.scheduling.catalog import cluster_entries
from broadcast_server.services.dispatch import CommandPublisher
from mqtt_contract.times import isoformat
from speaker_agent.playout.store import entry_to_message

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)
REFRESH_BEFORE_END = timedelta(hours=24)  # a window with less than this left is sent again, extended
# A new window still holds the last hour's airings, so one that is playing (or queued behind another)
# when the window is replaced carries on; the agent keeps its record of what it already played.
LOOKBACK = timedelta(hours=1)


def schedule_command(version: int, entries: list[dict[str, Any]], window_end: datetime, now: datetime) -> dict:
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "schedule",
        "issued_at": isoformat(now),
        "expires_at": isoformat(window_end),
        "schedule": {"version": version, "window_end": isoformat(window_end), "entries": entries},
    }


def push_schedules(
    engine: Engine, publisher: CommandPublisher, public_url: str, now: datetime, *, window: timedelta = WINDOW
) -> int:
    """Publish a window to every cluster whose entries changed or whose window runs short; return how many."""
    end = now + window
    with session_scope(engine) as session:
        windows = cluster_entries(session, public_url, now - LOOKBACK, end)
        cluster_ids = list(session.exec(select(Cluster.id)))
        last = {c.cluster_id: c for c in session.exec(select(ClusterSchedule))}
    commands: list[tuple[str, dict]] = []
    updates: dict[str, tuple[int, str]] = {}
    base_version = int(now.timestamp() * 1000)
    for cluster_id in cluster_ids:
        entries = [entry_to_message(e) for e in windows.get(cluster_id, [])]
        digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
        previous = last.get(cluster_id)
        if previous is not None and previous.digest == digest and previous.window_end - now > REFRESH_BEFORE_END:
            continue
        version = max(base_version, (previous.version + 1) if previous else 1)
        commands.append((cluster_id, schedule_command(version, entries, end, now)))
        updates[cluster_id] = (version, digest)
    if not commands:
        return 0
    acknowledged = publisher.publish_commands(commands)
    sent = {cluster_id for cluster_id, command in commands if command["id"] in acknowledged}
    with session_scope(engine) as session:
        for cluster_id in sent:
            version, digest = updates[cluster_id]
            session.merge(
                ClusterSchedule(cluster_id=cluster_id, version=version, digest=digest, window_end=end, pushed_at=now)
            )
    if len(sent) < len(commands):
        log.warning(
            "schedule push: %d of %d windows not acknowledged; retried next time",
            len(commands) - len(sent),
            len(commands),
        )
    return len(sent)


class SchedulePusher:
    """A thread that pushes windows when poked (a schedule changed) and every `interval` of clock time."""

    def __init__(
        self,
        engine: Engine,
        publisher: CommandPublisher,
        public_url: str,
        now: Callable[[], datetime],
        *,
        interval: timedelta = timedelta(hours=1),
        poll_s: float = 1.0,
    ) -> None:
        self.engine, self.publisher, self.public_url, self.now = engine, publisher, public_url, now
        self.interval = interval
        self.poll_s = poll_s
        self.pushes = 0
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-schedule-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._poke.set()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(10)

    def _run(self) -> None:
        next_at: datetime | None = None
        while not self._stop.is_set():
            now = self.now()
            if self._poke.is_set() or next_at is None or now >= next_at:
                self._poke.clear()
                try:
                    self.pushes += push_schedules(self.engine, self.publisher, self.public_url, now)
                except Exception:  # keep pushing later; a broken push must not stop the server
                    log.exception("schedule push failed")
                next_at = now + self.interval
            self._poke.wait(self.poll_s)
