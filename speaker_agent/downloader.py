"""Fetch audio over HTTP into the cache: resumed with Range after a break, retried with backoff, verified.

Downloads take turns (one at a time on a thin 4G link; an urgent one, for an emergency, does not
wait). Room is made in the cache first (least recently used files evicted, never one a pending
command needs), so a full disk fails the command with a reason instead of a half-written file.

The HTTP client is anything with httpx.AsyncClient's `stream("GET", url, headers=...)`: an httpx client
in the simulator and the tests, speaker_agent.http_client.UrllibClient on a device (`bcast agent`). This
module does not import httpx; an httpx client's errors are retried once httpx is in use.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from speaker_agent.cache import AudioCache, CacheFullError

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """The audio could not be fetched after every attempt."""


class IntegrityError(DownloadError):
    """The bytes fetched do not have the size or SHA-256 the command promised."""


class TransferError(Exception):
    """One attempt failed on the way: an HTTP status other than 200 or 206, or the body ended short."""


class HttpClient(Protocol):
    """What the Downloader uses of its client: httpx.AsyncClient, or http_client.UrllibClient."""

    def stream(self, method: str, url: str, *, headers: dict[str, str]) -> Any: ...


def retryable_errors(client: HttpClient) -> tuple[type[BaseException], ...]:
    """The errors of one attempt that another attempt may cure, for this client."""
    errors: tuple[type[BaseException], ...] = (TransferError, OSError)
    named = getattr(client, "transfer_errors", None)
    if named is not None:
        return errors + tuple(named)
    httpx = sys.modules.get("httpx")  # any other client is an httpx one, and then httpx is loaded
    return errors + ((httpx.HTTPError,) if httpx is not None else ())


class Downloader:
    """Downloads into an AudioCache; the http client is injected so the simulator can share one."""

    def __init__(
        self,
        client: HttpClient,
        cache: AudioCache,
        *,
        attempts: int = 4,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        rng: random.Random | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.headers = dict(headers or {})
        self.cache = cache
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.rng = rng or random.Random()
        self._turn = asyncio.Lock()
        self._retryable = retryable_errors(client)

    async def fetch(
        self,
        url: str,
        sha256: str,
        size_bytes: int,
        *,
        needed: Callable[[], Iterable[str]] = tuple,
        urgent: bool = False,
    ) -> Path:
        """Return the cached path of the file with this hash, downloading it if needed.

        `needed()` names the files pending commands still need: eviction spares them. An `urgent`
        download does not wait for its turn, and goes ahead even if eviction cannot make room."""
        if self.cache.has(sha256):
            self.cache.touch(sha256)
            return self.cache.path_for(sha256)
        if urgent:
            return await self._fetch(url, sha256, size_bytes, needed, strict=False)
        async with self._turn:
            if self.cache.has(sha256):  # fetched by the command before us
                self.cache.touch(sha256)
                return self.cache.path_for(sha256)
            return await self._fetch(url, sha256, size_bytes, needed, strict=True)

    async def _fetch(
        self, url: str, sha256: str, size_bytes: int, needed: Callable[[], Iterable[str]], *, strict: bool
    ) -> Path:
        try:
            self.cache.make_room(size_bytes, {*needed(), sha256})
        except CacheFullError as exc:
            if strict:
                raise DownloadError(f"download of {url} not started: {exc}") from exc
            log.warning("urgent download of %s goes ahead without room: %s", url, exc)
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return await self._fetch_once(url, sha256, size_bytes)
            except IntegrityError as exc:
                # Bad bytes: start the next attempt from zero, not from the poisoned partial file.
                self.cache.partial_path(sha256).unlink(missing_ok=True)
                last = exc
            except self._retryable as exc:
                last = exc
            if attempt + 1 < self.attempts:
                delay = min(self.max_delay_s, self.base_delay_s * 2**attempt)
                await asyncio.sleep(delay * (0.5 + self.rng.random()))  # full jitter around the step
        raise DownloadError(f"download of {url} failed after {self.attempts} attempts: {last}") from last

    async def _fetch_once(self, url: str, sha256: str, size_bytes: int) -> Path:
        partial = self.cache.partial_path(sha256)
        digest = hashlib.sha256()
        have = 0
        if partial.exists():
            with open(partial, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(block)
                    have += len(block)
            if have > size_bytes:
                partial.unlink()
                digest, have = hashlib.sha256(), 0
        headers = dict(self.headers)
        if 0 < have < size_bytes:
            headers["Range"] = f"bytes={have}-"
        if have < size_bytes:
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 200 and have:
                    digest, have = hashlib.sha256(), 0  # server ignored the Range: start over
                    mode = "wb"
                elif response.status_code in (200, 206):
                    mode = "ab" if have else "wb"
                else:
                    raise TransferError(f"HTTP {response.status_code} for {url}")
                with open(partial, mode) as out:
                    async for chunk in response.aiter_bytes():
                        have += len(chunk)
                        if have > size_bytes:
                            raise IntegrityError(f"{url}: more than the promised {size_bytes} bytes")
                        digest.update(chunk)
                        out.write(chunk)
        if have != size_bytes:
            raise TransferError(f"{url}: got {have} of {size_bytes} bytes")
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"{url}: SHA-256 mismatch")
        # fsync can take a while on an SD card: not on the loop that times playback and keepalives.
        return await asyncio.to_thread(self.cache.commit, sha256, partial, have)
