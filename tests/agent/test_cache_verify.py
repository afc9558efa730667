"""Before a play the cached file is checked: hashed again, unless its bytes were hashed minutes ago."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import speaker_agent.cache as cache_module
from speaker_agent.cache import AudioCache

from .conftest import flip_a_byte


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hashes(monkeypatch) -> list[Path]:
    """Every file the cache reads back to hash, in order."""
    seen: list[Path] = []
    real = cache_module.file_sha256

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(cache_module, "file_sha256", counting)
    return seen


def committed(cache: AudioCache, data: bytes) -> str:
    """Store `data` as a download does: written to its partial file, hashed on the way, committed."""
    sha = hashlib.sha256(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.write_bytes(data)
    cache.commit(sha, partial, len(data))
    return sha


def test_a_file_just_downloaded_is_not_read_back(tmp_path: Path, hashes: list[Path]) -> None:
    ticks = Ticks()
    cache = AudioCache(tmp_path / "cache", monotonic=ticks)
    sha = committed(cache, b"speech" * 1000)
    ticks.now += cache_module.FRESH_S - 1
    assert cache.verify(sha)
    assert hashes == []


def test_an_older_file_is_hashed_again_and_a_rotten_one_removed(tmp_path: Path, hashes: list[Path]) -> None:
    ticks = Ticks()
    cache = AudioCache(tmp_path / "cache", monotonic=ticks)
    good = committed(cache, b"good" * 1000)
    bad = committed(cache, b"bad!" * 1000)
    ticks.now += cache_module.FRESH_S
    flip_a_byte(cache.path_for(bad))  # same size: only hashing finds it
    assert cache.verify(good)
    assert not cache.verify(bad)
    assert not cache.has(bad) and cache.has(good)
    assert hashes == [cache.path_for(good), cache.path_for(bad)]
    assert cache.verify(good)  # hashed just now: trusted again for FRESH_S
    assert len(hashes) == 2


def test_a_file_of_another_size_is_hashed_however_fresh(tmp_path: Path, hashes: list[Path]) -> None:
    cache = AudioCache(tmp_path / "cache", monotonic=Ticks())
    sha = committed(cache, b"whole" * 1000)
    path = cache.path_for(sha)
    path.write_bytes(path.read_bytes()[:-10])  # cut short since it was committed
    assert not cache.verify(sha)
    assert hashes == [path] and not cache.has(sha)


def test_a_missing_or_strange_file_is_not_whole(tmp_path: Path, hashes: list[Path]) -> None:
    cache = AudioCache(tmp_path / "cache", monotonic=Ticks())
    sha = committed(cache, b"gone" * 1000)
    cache.path_for(sha).unlink()
    assert not cache.verify(sha)
    cache.path_for(sha).mkdir()  # a folder in its place
    assert not cache.verify(sha)
    assert hashes == []
