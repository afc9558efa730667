"""Alerts out by webhook: one JSON POST per alert, from a thread of its own so ingest never waits."""

from __future__ import annotations

import logging
import queue
import threading

import httpx

from broadcast_server.health.alerts import Alert

log = logging.getLogger(__name__)


class WebhookSender:
    """POSTs each alert's ``payload()`` to ``url``; retries a failed POST a few times, then logs and drops it."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, attempts: int = 4, backoff_s: float = 1.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-webhook", daemon=True)
        self._thread.start()

    def __call__(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.failed += 1
            log.error("webhook queue full, alert dropped: %s", alert.message)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within the timeout), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._stop.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                alert = self._queue.get()
                if alert is None:
                    return
                self._post(client, alert)

    def _post(self, client: httpx.Client, alert: Alert) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.post(self.url, json=alert.payload())
                if response.status_code < 400:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
            if attempt < self.attempts and not self._stop.wait(delay):
                delay *= 2
                continue
            break
        self.failed += 1
        log.error("webhook %s failed (%s), alert dropped: %s", self.url, problem, alert.message)
