"""Keep raw heartbeats for a limited time: 10,000 clusters at one a minute write 14.4 million rows a day.

What technicians read later lives elsewhere: presence changes in ``presence_event``, each cluster's
latest figures in ``cluster_state``, playback in ``playback_report`` and the statistics rollups. Old
heartbeat rows are deleted by the leader, in small transactions so that ingest is never held up long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from broadcast_server.models import Heartbeat

log = logging.getLogger(__name__)

_ID = Heartbeat.__table__.c.id
_RECEIVED_AT = Heartbeat.__table__.c.received_at


def prune_heartbeats(engine: Engine, before: datetime, *, batch: int = 20_000) -> int:
    """Delete heartbeats received before `before`, `batch` rows per transaction; return how many went.

    Rows go in id order up to the first one received at or after `before`: only that boundary is looked
    up (an index on ``received_at`` would slow every insert), and no newer row is ever deleted. An older
    row stored after a newer one (a replica's late batch) goes on a later run.
    """
    with engine.connect() as connection:
        boundary = connection.execute(select(_ID).where(_RECEIVED_AT >= before).order_by(_ID).limit(1)).scalar()
        if boundary is None:  # every row is older than `before`, or there is none
            boundary = (connection.execute(select(_ID).order_by(_ID.desc()).limit(1)).scalar() or 0) + 1
    deleted = 0
    while True:
        with engine.begin() as connection:
            last = connection.execute(
                select(_ID).where(_ID < boundary).order_by(_ID).offset(batch - 1).limit(1)
            ).scalar()
            upto = boundary if last is None else last + 1
            deleted += connection.execute(delete(Heartbeat.__table__).where(_ID < upto)).rowcount
        if last is None:
            return deleted


class HeartbeatPruner:
    """On the leader, every `every_s`: delete heartbeats older than `keep` (None keeps them all)."""

    def __init__(
        self,
        engine: Engine,
        now: Callable[[], datetime],
        is_leader: Callable[[], bool],
        *,
        keep: timedelta | None,
        every_s: float = 3600.0,
    ) -> None:
        self.engine, self.now, self.is_leader = engine, now, is_leader
        self.keep, self.every_s = keep, every_s
        self.deleted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-heartbeat-prune", daemon=True)

    def start(self) -> None:
        if self.keep is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def run_once(self) -> int:
        """Prune now if this replica leads; the number of rows deleted."""
        if self.keep is None or not self.is_leader():
            return 0
        count = prune_heartbeats(self.engine, self.now() - self.keep)
        if count:
            log.info("deleted %d heartbeats older than %s", count, self.keep)
        self.deleted += count
        return count

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next run tries again; pruning must never stop the server
                log.exception("deleting old heartbeats failed")
            self._stop.wait(self.every_s)
