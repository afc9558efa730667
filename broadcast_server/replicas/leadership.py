"""One leader among server replicas, chosen by a PostgreSQL advisory lock.

The leader alone pushes schedule windows and resends broadcasts a crashed replica left half-sent, so
nothing goes out twice because two replicas did the same job. The lock is session-level, held on a
connection kept for it: if the leader dies or loses the database, PostgreSQL ends the session, the lock
is free, and the next replica that asks takes over. SQLite means a single server, always the leader.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

LOCK_KEY = 0x62636173740001  # "bcast" and a 1: the lock of the leader's duties


class Leadership:
    """Ask `check()` before a leader's duty; it takes the lock when free and confirms it is still held."""

    def __init__(self, engine: Engine, *, name: str = "") -> None:
        self.engine = engine
        self.name = name or "this replica"
        self.single_server = engine.dialect.name != "postgresql"
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self.single_server or self._connection is not None

    def check(self) -> bool:
        """True while this replica leads: takes the lock if it is free, else confirms the session holding it."""
        if self.single_server:
            return True
        with self._lock:
            try:
                if self._connection is None:
                    return self._try_take()
                self._connection.execute(text("SELECT 1"))  # the session (and so the lock) is still there
                return True
            except DBAPIError as exc:
                log.warning("%s lost the database, and with it the lead: %s", self.name, exc.__class__.__name__)
                self._drop()
                return False

    def release(self) -> None:
        """Give the lead up (on shutdown), so another replica takes over at once."""
        with self._lock:
            if self._connection is None:
                return
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            except DBAPIError:
                pass
            self._drop()

    def _try_take(self) -> bool:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar())
        except DBAPIError:
            connection.invalidate()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        log.info("%s leads: it pushes schedules and resumes unfinished dispatches", self.name)
        return True

    def _drop(self) -> None:
        if self._connection is not None:
            # Closed for real, never back to the pool: a pooled session would keep the lock held.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
