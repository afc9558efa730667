"""The HTTP client `bcast agent` downloads audio with on a device: urllib from the standard library.

The Downloader calls one method of its client, `stream("GET", url, headers=...)`, as on an
httpx.AsyncClient. The simulator and the tests keep passing httpx clients (the simulator shares a few
among thousands of agents); a device runs one agent that fetches a few files a day, and httpx with what
it imports (httpcore, h11, anyio, rich, click) and the certifi store its client loads took about 9 MB of
the agent's 40 MB (issue 9). paho-mqtt imports urllib.request already, so this client costs nothing.

Each blocking step (connecting, each read of at most `chunk_size` bytes) runs in a worker thread of the
event loop's default executor; the loop never blocks. Compared with an httpx.AsyncClient made with only a
timeout, as the agent made it: redirects are not followed either (a 3xx is the response); proxies come
from the environment too; `timeout` bounds the connection and each read; certificates are checked against
the system's store (`ssl.create_default_context`, which honours SSL_CERT_FILE) rather than certifi's;
every download opens its own connection (no keep-alive pool: downloads are minutes apart). Closing a
response shuts its connection down, so a read blocked in a worker thread returns at once: a download
cancelled on a stalled link does not hold the agent's exit for `timeout` (asyncio.run waits for the
executor's threads, and systemd stops the agent after 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer comes back as the response, as with httpx's default `follow_redirects=False`."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibResponse:
    """The part of httpx.Response the Downloader reads: `status_code` and `aiter_bytes()`."""

    def __init__(self, raw: Any, chunk_size: int) -> None:
        self._raw = raw
        self._chunk_size = chunk_size
        self.status_code: int = raw.status  # HTTPError has it too
        self.headers = raw.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        # read1: what has arrived, up to chunk_size (read would wait for a full chunk on a slow link)
        while chunk := await asyncio.to_thread(self._raw.read1, self._chunk_size):
            yield chunk

    def close(self) -> None:
        """Shut the connection down (waking a read blocked in a worker thread), then close it."""
        try:
            fd = self._raw.fileno()
        except (AttributeError, ValueError, OSError):
            fd = -1  # the body was read to its end, and http.client has closed the connection already
        if fd >= 0:
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as connection:
                connection.shutdown(socket.SHUT_RDWR)
        self._raw.close()


class UrllibClient:
    """`stream("GET", url, headers=...)` over urllib.request; failures are OSError or `transfer_errors`."""

    # What a transfer can raise besides OSError (URLError, timeouts, resets): a malformed chunked body.
    transfer_errors: tuple[type[Exception], ...] = (http.client.HTTPException,)

    def __init__(self, *, timeout: float = 60.0, chunk_size: int = 1 << 16) -> None:
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._opener = urllib.request.build_opener(_NoRedirect)

    async def __aenter__(self) -> UrllibClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release: each download closes its own connection."""

    def _open(self, method: str, url: str, headers: Mapping[str, str]) -> Any:
        try:
            request = urllib.request.Request(url, headers=dict(headers), method=method)
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as answer:
            return answer  # a 4xx or 5xx (or 3xx) is an answer with a status, as httpx gives it
        except ValueError as exc:  # "unknown url type", a port that is not a number
            raise urllib.error.URLError(f"{url!r}: {exc}") from None

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[UrllibResponse]:
        opening = asyncio.ensure_future(asyncio.to_thread(self._open, method, url, headers or {}))
        try:
            raw = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The thread cannot be interrupted: close the connection once it is open.
            opening.add_done_callback(lambda done: done.cancelled() or done.exception() or done.result().close())
            raise
        response = UrllibResponse(raw, self.chunk_size)
        try:
            yield response
        finally:
            response.close()
