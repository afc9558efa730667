"""The simulated clusters' HTTP link: an aiohttp client that corrupts, truncates, slows or refuses downloads.

It sits between every agent and whatever serves the audio (the server, or the simulator's own origin),
and tells clusters apart by the `X-Bcast-Cluster` header the agent sends. Counters say what it did.

It offers the one method the agent's Downloader calls, `stream("GET", url, headers=...)` (as on an
httpx.AsyncClient, or on the device's speaker_agent.http_client.UrllibClient). aiohttp rather than httpx:
with ten thousand simulated clusters downloading at once, httpx's own work per request (building the
request, its URL and headers) was a sixth of the simulator's CPU time, which delays every simulated
cluster (bench/fanout.py); aiohttp parses in C and queues waiting requests without rescanning its pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

SLOW_CHUNK = 4096
READ_CHUNK = 64 * 1024


@dataclass
class HttpFaults:
    """Which cluster's downloads to harm, and how; shared by the client and the simulation."""

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


class SimulatedLinkCut(aiohttp.ClientConnectionError):
    """The cluster's link is cut (a `network` cut-off in the scenario): the request never leaves."""


class FaultyResponse:
    """The part of a response the Downloader reads (`status_code`, `headers`, `aiter_bytes()`), with faults."""

    def __init__(self, inner: aiohttp.ClientResponse, *, corrupt: bool, limit: int | None, rate: float | None) -> None:
        self._inner = inner
        self.status_code = inner.status
        self.headers = inner.headers
        self.corrupt = corrupt
        self.limit = limit  # bytes after which the connection "drops" (fewer than Content-Length)
        self.rate = rate  # bytes per second of a slow link

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self._inner.content.iter_chunked(READ_CHUNK):
            if self.corrupt:
                middle = len(chunk) // 2
                chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]
                self.corrupt = False
            if self.limit is not None:
                chunk = chunk[: max(0, self.limit - sent)]
            if self.rate:
                for start in range(0, len(chunk), SLOW_CHUNK):
                    piece = chunk[start : start + SLOW_CHUNK]
                    await asyncio.sleep(len(piece) / self.rate)
                    sent += len(piece)
                    yield piece
            elif chunk:
                sent += len(chunk)
                yield chunk
            if self.limit is not None and sent >= self.limit:
                return


class FaultyHttpClient:
    """An aiohttp session for a whole simulated fleet, applying `faults` to each cluster's downloads.

    At most `connections` requests are open at once (aiohttp queues the rest); connections are kept alive
    and shared by the clusters in turn. The session is made on first use, inside the running loop."""

    # What a transfer can raise besides OSError, for the Downloader's retries.
    transfer_errors: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError)

    def __init__(self, faults: HttpFaults | None = None, *, connections: int = 256, timeout_s: float = 60.0) -> None:
        self.faults = faults if faults is not None else HttpFaults()
        self.connections = connections
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, auto_decompress=False, raise_for_status=False
            )
        return self._session

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[FaultyResponse]:
        headers = dict(headers or {})
        named = {name.lower(): value for name, value in headers.items()}
        cluster = named.get("x-bcast-cluster", "")
        faults = self.faults
        faults.requests += 1
        if "range" in named:
            faults.range_requests += 1
        if cluster in faults.cut:
            faults.refused += 1
            raise SimulatedLinkCut("simulated link cut")
        async with self._open_session().request(method, url, headers=headers, allow_redirects=False) as inner:
            corrupt = truncate = False
            rate = None
            if inner.status in (200, 206):
                corrupt = faults._take(faults.corrupt, cluster)
                truncate = faults._take(faults.truncate, cluster)
                rate = faults.slow.get(cluster)
            faults.corrupted += corrupt
            faults.truncated += truncate
            faults.slowed += bool(rate)
            length = inner.content_length or 0
            yield FaultyResponse(inner, corrupt=corrupt, limit=max(1, length // 2) if truncate else None, rate=rate)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> FaultyHttpClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
