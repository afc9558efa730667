"""The simulated clusters' HTTP link: an httpx transport that corrupts, truncates, slows or refuses downloads.

It sits between every agent and whatever serves the audio (the server, or the simulator's own origin),
and tells clusters apart by the `X-Bcast-Cluster` header the agent sends. Counters say what it did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

SLOW_CHUNK = 4096


@dataclass
class HttpFaults:
    """Which cluster's downloads to harm, and how; shared by the transport and the simulation."""

    cut: set[str] = field(default_factory=set)
    corrupt: dict[str, int | None] = field(default_factory=dict)  # cluster -> responses left to corrupt (None: all)
    truncate: dict[str, int | None] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)  # cluster -> bytes per second
    requests: int = 0
    range_requests: int = 0
    refused: int = 0
    corrupted: int = 0
    truncated: int = 0
    slowed: int = 0

    def _take(self, table: dict[str, int | None], cluster: str) -> bool:
        if cluster not in table:
            return False
        left = table[cluster]
        if left is None:
            return True
        if left <= 1:
            del table[cluster]
        else:
            table[cluster] = left - 1
        return True

    def counters(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "range_requests": self.range_requests,
            "refused_link_cut": self.refused,
            "corrupted_responses": self.corrupted,
            "truncated_responses": self.truncated,
            "slowed_responses": self.slowed,
        }


class FaultyTransport(httpx.AsyncBaseTransport):
    """Wraps a real transport; applies the faults of `HttpFaults` to each cluster's responses.

    At most `concurrency` requests are open at once (released when the response is closed): with
    thousands of agents downloading together, httpcore's pool would otherwise rescan a queue of
    thousands of waiting requests on every release (measured here: most of the run's CPU time)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, faults: HttpFaults, *, concurrency: int = 48) -> None:
        self.inner = inner
        self.faults = faults
        self._open = asyncio.Semaphore(concurrency)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        faults = self.faults
        cluster = request.headers.get("x-bcast-cluster", "")
        faults.requests += 1
        if "range" in request.headers:
            faults.range_requests += 1
        if cluster in faults.cut:
            faults.refused += 1
            raise httpx.ConnectError("simulated link cut", request=request)
        await self._open.acquire()
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self._open.release()
            raise
        corrupt = truncate = False
        rate = None
        if response.status_code in (200, 206):
            corrupt = faults._take(faults.corrupt, cluster)
            truncate = faults._take(faults.truncate, cluster)
            rate = faults.slow.get(cluster)
        faults.corrupted += corrupt
        faults.truncated += truncate
        faults.slowed += bool(rate)
        length = int(response.headers.get("content-length", "0") or 0)
        stream = _FaultyStream(
            response.stream,
            corrupt=corrupt,
            limit=max(1, length // 2) if truncate else None,
            rate=rate,
            on_close=self._open.release,
        )
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _FaultyStream(httpx.AsyncByteStream):
    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        *,
        corrupt: bool,
        limit: int | None,
        rate: float | None,
        on_close: Callable[[], None],
    ) -> None:
        self.inner = inner
        self.corrupt = corrupt
        self.limit = limit
        self.rate = rate
        self._on_close: Callable[[], None] | None = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.inner:
            if not chunk:
                continue
            if self.corrupt:
                middle = len(chunk) // 2
                chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]
                self.corrupt = False
            if self.limit is not None:
                chunk = chunk[: max(0, self.limit - sent)]
            for start in range(0, len(chunk), SLOW_CHUNK if self.rate else max(1, len(chunk))):
                piece = chunk[start : start + SLOW_CHUNK] if self.rate else chunk
                if self.rate:
                    await asyncio.sleep(len(piece) / self.rate)
                sent += len(piece)
                yield piece
            if self.limit is not None and sent >= self.limit:
                return  # the connection "dropped": fewer bytes than Content-Length

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self._on_close is not None:
                self._on_close()
                self._on_close = None
