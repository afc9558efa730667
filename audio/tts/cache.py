"""On-disk cache of synthesised speech, keyed by what decides the audio.

Key: SHA-256 of (normalised text, engine, voice, rate, engine settings, NORMALIZER_VERSION). An entry is
`<key>.wav` plus `<key>.json` holding the WAV's SHA-256; an entry whose WAV no longer matches (torn
write, disk error, tampering) is deleted and synthesised again.

Configuration (environment): `BCAST_TTS_CACHE_DIR` (default: the user cache dir, `.../bcast/tts`),
`BCAST_TTS_CACHE=off` to disable, `BCAST_TTS_CACHE_MAX_MB` (default 500) to bound its size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from audio.normalize.normalizer import NORMALIZER_VERSION

# Bump when the layout of entries changes.
CACHE_FORMAT = 1
DEFAULT_MAX_BYTES = 500 * 1024 * 1024


class CacheCorrupted(Exception):
    """A cache entry exists but its WAV does not match the recorded hash."""


def default_cache_dir() -> Path:
    """`BCAST_TTS_CACHE_DIR`, else the platform's user cache dir (platformdirs if installed) plus bcast/tts."""
    configured = os.environ.get("BCAST_TTS_CACHE_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "bcast" / "tts"
    return Path(user_cache_dir("bcast")) / "tts"


def cache_enabled() -> bool:
    """False when `BCAST_TTS_CACHE` is off/0/false/no."""
    return os.environ.get("BCAST_TTS_CACHE", "on").strip().lower() not in {"0", "off", "false", "no"}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SynthesisCache:
    """A directory of cached engine WAVs."""

    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        if max_bytes is None:
            raw = os.environ.get("BCAST_TTS_CACHE_MAX_MB", "").strip()
            max_bytes = int(float(raw) * 1024 * 1024) if raw else DEFAULT_MAX_BYTES
        self.max_bytes = max_bytes

    @classmethod
    def from_env(cls) -> SynthesisCache | None:
        """The configured cache, or None if caching is turned off."""
        return cls(default_cache_dir()) if cache_enabled() else None

    @staticmethod
    def key(text: str, engine: str, voice: str, rate_wpm: int | None, settings: dict[str, Any]) -> str:
        """Hex SHA-256 naming the audio for these inputs."""
        material = {
            "format": CACHE_FORMAT,
            "text": text,
            "engine": engine,
            "voice": voice,
            "rate_wpm": rate_wpm,
            "settings": settings,
            "normalizer": NORMALIZER_VERSION,
        }
        blob = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.directory / key[:2]
        return folder / f"{key}.wav", folder / f"{key}.json"

    def get(self, key: str) -> Path | None:
        """The cached WAV for `key` after checking its hash; None on a miss. A corrupted entry is removed."""
        wav, meta = self._paths(key)
        if not wav.is_file() or not meta.is_file():
            return None
        try:
            self.verify(key)
        except CacheCorrupted:
            self.remove(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(wav)  # recently used entries survive pruning
        return wav

    def verify(self, key: str) -> None:
        """Raise `CacheCorrupted` unless the entry's WAV matches the SHA-256 stored beside it."""
        wav, meta = self._paths(key)
        try:
            recorded = json.loads(meta.read_text(encoding="utf-8"))
            expected = recorded["sha256"]
            actual = _sha256_file(wav)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheCorrupted(f"cache entry {key} is unreadable: {exc}") from exc
        if actual != expected or recorded.get("key") != key:
            raise CacheCorrupted(f"cache entry {key}: WAV hash {actual} does not match {expected}")

    def put(self, key: str, source_wav: Path, info: dict[str, Any]) -> Path:
        """Copy `source_wav` into the cache under `key` (atomically) and return the cached path."""
        wav, meta = self._paths(key)
        wav.parent.mkdir(parents=True, exist_ok=True)
        data = Path(source_wav).read_bytes()
        record = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **info}
        self._write_atomic(wav, data)
        self._write_atomic(meta, json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        self.prune(keep=key)
        return wav

    def remove(self, key: str) -> None:
        for path in self._paths(key):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def prune(self, *, keep: str = "") -> None:
        """Delete least recently used entries (never `keep`) until the cache fits in `max_bytes`."""
        entries = []
        total = 0
        for wav in self.directory.glob("??/*.wav"):
            with contextlib.suppress(FileNotFoundError):
                stat = wav.stat()
                entries.append((stat.st_mtime, stat.st_size, wav))
                total += stat.st_size
        for _mtime, size, wav in sorted(entries):
            if total <= self.max_bytes:
                break
            if wav.stem == keep:
                continue
            self.remove(wav.stem)
            total -= size

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
