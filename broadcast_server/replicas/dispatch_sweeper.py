"""On the leader: resend what broadcasts still owe after a replica crashed or the broker did not acknowledge.

On taking the lead it sweeps everything unfinished (the previous leader, or this server before a
restart, may have died mid-dispatch); afterwards, every `every_s`, it sweeps only broadcasts older than
`grace`, so a live replica's dispatch in progress is left to that replica. Commands keep their ids, so
an agent that already has one ignores the copy: a sweep never makes a cluster play twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from broadcast_server.replicas.leadership import Leadership
from broadcast_server.services.dispatch import CommandPublisher, resume_dispatching

log = logging.getLogger(__name__)


class DispatchSweeper:
    def __init__(
        self,
        engine: Engine,
        publisher: CommandPublisher,
        public_url: str,
        now: Callable[[], datetime],
        leadership: Leadership,
        *,
        every_s: float = 30.0,
        grace: timedelta = timedelta(seconds=90),
        poll_s: float = 1.0,
    ) -> None:
        self.engine, self.publisher, self.public_url, self.now = engine, publisher, public_url, now
        self.leadership = leadership
        self.every_s, self.grace, self.poll_s = every_s, grace, poll_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-dispatch-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        leading = False
        waited = 0.0
        while not self._stop.is_set():
            if not self.leadership.check():
                leading = False
            elif not leading or waited >= self.every_s:
                now = self.now()
                self._sweep(now, None if not leading else now - self.grace)
                leading, waited = True, 0.0
            self._stop.wait(self.poll_s)
            waited += self.poll_s

    def _sweep(self, now: datetime, created_before: datetime | None) -> None:
        try:
            self.sent += resume_dispatching(
                self.engine, self.publisher, self.public_url, now, created_before=created_before
            )
        except Exception:  # the next sweep tries again; a failed one must not stop the server
            log.exception("resending unfinished broadcasts failed")
