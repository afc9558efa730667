"""Audio cache on the device: files named by SHA-256, written atomically, verified before use."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CacheError(RuntimeError):
    """The cache cannot hold or vouch for a file."""


class AudioCache:
    """A folder of `<sha256>.audio` files; a file is only ever renamed into place after its hash matched."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.partial_dir = directory / "partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise CacheError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.directory / f"{sha256}.audio"

    def partial_path(self, sha256: str) -> Path:
        return self.partial_dir / f"{self.path_for(sha256).stem}.part"

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def verify(self, sha256: str) -> bool:
        """Re-hash a cached file; a mismatch (bit rot, tampering) removes it."""
        path = self.path_for(sha256)
        if not path.is_file():
            return False
        if file_sha256(path) == sha256:
            return True
        path.unlink(missing_ok=True)
        return False

    def commit(self, sha256: str, partial: Path) -> Path:
        """Move a fully downloaded, verified file into place, durably."""
        final = self.path_for(sha256)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, final)
        _fsync_dir(self.directory)
        return final

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.directory).free


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
