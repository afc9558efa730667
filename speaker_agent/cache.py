"""Audio cache on the device: files named by SHA-256, written atomically, verified before use.

Verified before use means hashed again, unless its bytes were hashed in the last `fresh_s` seconds (by
their download, which hashes them as they arrive, or by an earlier check): reading a file back minutes
after it was written comes from the page cache, not the card, so it would prove nothing and only delay
the play (a 5 MB bulletin on a small ARM board: a tenth of a second before an alert begins).
When space runs low the least recently used files go first (a file's mtime is its last use), and a
file that a command still waiting on this agent needs is never evicted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from speaker_agent.durable_file import replace_durably

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
FRESH_S = 600.0  # a file hashed this recently, still of the same size, is used without hashing it again


class CacheError(RuntimeError):
    """The cache cannot hold or vouch for a file."""


class CacheFullError(CacheError):
    """No room for a file even after evicting every file that no pending command needs."""


class AudioCache:
    """A folder of `<sha256>.audio` files; a file is only ever renamed into place after its hash matched.

    `max_bytes` caps the total size of cached files; `min_free_bytes` is the free space to leave on the
    disk; `disk_free` tells the disk's free bytes (injected so the simulator and tests can model a small
    disk).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int | None = None,
        min_free_bytes: int = 0,
        disk_free: Callable[[], int] | None = None,
        fresh_s: float = FRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        # Both folders are made on the first download: a simulated fleet has thousands of caches.
        self.partial_dir = directory / "partial"
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._disk_free = disk_free or (lambda: shutil.disk_usage(_existing(self.directory)).free)
        self.fresh_s = fresh_s
        self._monotonic = monotonic
        self._hashed: dict[str, tuple[float, int]] = {}  # sha256 -> (when its bytes were last hashed, size)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise CacheError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.directory / f"{sha256}.audio"

    def partial_path(self, sha256: str) -> Path:
        """Where a download in progress goes (never taken as good: only `commit` names a file by its hash)."""
        if not self.partial_dir.is_dir():  # a stat; mkdir(exist_ok) costs a failed syscall and an exception
            self.partial_dir.mkdir(parents=True, exist_ok=True)
        return self.partial_dir / f"{self.path_for(sha256).stem}.part"

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def verify(self, sha256: str) -> bool:
        """Whether a cached file is whole: re-hashed unless hashed within `fresh_s`; a mismatch removes it."""
        path = self.path_for(sha256)
        try:
            found = path.stat()
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(found.st_mode):
            return False
        hashed = self._hashed.get(sha256)
        now = self._monotonic()
        if hashed is not None and hashed[1] == found.st_size and now - hashed[0] < self.fresh_s:
            return True
        if file_sha256(path) == sha256:
            self._hashed[sha256] = (now, found.st_size)
            return True
        self._hashed.pop(sha256, None)
        log.warning("cached %s does not match its hash: removed", path.name)
        path.unlink(missing_ok=True)
        return False

    def touch(self, sha256: str) -> None:
        """Mark a file as just used (its mtime), for least-recently-used eviction."""
        try:
            os.utime(self.path_for(sha256))
        except FileNotFoundError:
            pass

    def commit(self, sha256: str, partial: Path, size_bytes: int) -> Path:
        """Move a fully downloaded file, whose `size_bytes` bytes were hashed on the way in, into place durably."""
        final = self.path_for(sha256)
        replace_durably(partial, final)
        self._hashed[sha256] = (self._monotonic(), size_bytes)
        return final

    def entries(self) -> list[tuple[float, int, str]]:
        """(last use, size, sha256) of every cached file, least recently used first."""
        found = []
        for path in self.directory.glob("*.audio"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((stat.st_mtime, stat.st_size, path.stem))
        found.sort()
        return found

    def used_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def free_bytes(self) -> int:
        """Bytes a new file may take: the disk's free space less the reserve, and within max_bytes."""
        free = self._disk_free() - self.min_free_bytes
        if self.max_bytes is not None:
            free = min(free, self.max_bytes - self.used_bytes())
        return max(0, free)

    def make_room(self, size_bytes: int, keep: Iterable[str] = ()) -> list[str]:
        """Evict least recently used files until `size_bytes` more fit; never a file named in `keep`.

        Returns the evicted hashes; raises CacheFullError when the kept files alone leave no room.
        """
        disk_free = self._disk_free()
        if self.max_bytes is None and disk_free - size_bytes >= self.min_free_bytes:
            return []  # no cap and room on the disk: no need to list the cache (one statvfs instead)
        keep = set(keep)
        entries = self.entries()
        used = sum(size for _, size, _ in entries)
        evicted: list[str] = []

        def short() -> bool:
            over_cap = self.max_bytes is not None and used + size_bytes > self.max_bytes
            return over_cap or disk_free - size_bytes < self.min_free_bytes

        for _, size, sha256 in entries:
            if not short():
                break
            if sha256 in keep:
                continue
            self.path_for(sha256).unlink(missing_ok=True)
            self._hashed.pop(sha256, None)
            used -= size
            disk_free += size
            evicted.append(sha256)
        if evicted:
            log.info("cache: evicted %d file(s) to make room for %d bytes", len(evicted), size_bytes)
        if short():
            raise CacheFullError(
                f"no room for {size_bytes} bytes: {used} bytes cached are still needed, {disk_free} bytes free"
            )
        return evicted


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (for the disk's free space before the folder exists)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
