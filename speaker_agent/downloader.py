"""Fetch audio over HTTP into the cache: resumed with Range after a break, retried with backoff, verified."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from pathlib import Path

import httpx

from speaker_agent.cache import AudioCache

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """The audio could not be fetched after every attempt."""


class IntegrityError(DownloadError):
    """The bytes fetched do not have the size or SHA-256 the command promised."""


class Downloader:
    """Downloads into an AudioCache; the http client is injected so the simulator can share one."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        cache: AudioCache,
        *,
        attempts: int = 4,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.rng = rng or random.Random()

    async def fetch(self, url: str, sha256: str, size_bytes: int) -> Path:
        """Return the cached path of the file with this hash, downloading it if needed."""
        if self.cache.has(sha256):
            return self.cache.path_for(sha256)
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return await self._fetch_once(url, sha256, size_bytes)
            except IntegrityError as exc:
                # Bad bytes: start the next attempt from zero, not from the poisoned partial file.
                self.cache.partial_path(sha256).unlink(missing_ok=True)
                last = exc
            except (httpx.HTTPError, OSError) as exc:
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
        headers = {"Range": f"bytes={have}-"} if 0 < have < size_bytes else {}
        if have < size_bytes:
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 200 and have:
                    digest, have = hashlib.sha256(), 0  # server ignored the Range: start over
                    mode = "wb"
                elif response.status_code in (200, 206):
                    mode = "ab" if have else "wb"
                else:
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code} for {url}", request=response.request, response=response
                    )
                with open(partial, mode) as out:
                    async for chunk in response.aiter_bytes():
                        have += len(chunk)
                        if have > size_bytes:
                            raise IntegrityError(f"{url}: more than the promised {size_bytes} bytes")
                        digest.update(chunk)
                        out.write(chunk)
        if have != size_bytes:
            raise httpx.ReadError(f"{url}: got {have} of {size_bytes} bytes")
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"{url}: SHA-256 mismatch")
        return self.cache.commit(sha256, partial)
