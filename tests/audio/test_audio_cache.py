"""The synthesis cache, exercised with the real espeak-ng engine wrapped in a call counter."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import audio.tts.cache as cache_module
from audio.speech import text_to_broadcast_audio, text_to_wav
from audio.tts.cache import SynthesisCache, default_cache_dir
from audio.tts.engine import Availability
from audio.tts.espeak import EspeakEngine

TEXT = "Ngày 15/3/2024, UBND xã họp lúc 7h30."


class CountingEngine:
    """The real espeak-ng engine, counting how often it is asked to synthesize."""

    def __init__(self) -> None:
        self.inner = EspeakEngine()
        self.name = self.inner.name
        self.default_voice = self.inner.default_voice
        self.calls: list[str] = []

    def available(self) -> Availability:
        return self.inner.available()

    def voices(self) -> Mapping[str, str]:
        return self.inner.voices()

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        self.calls.append(text)
        self.inner.synthesize(text, voice, out_wav, rate_wpm=rate_wpm)


@pytest.fixture
def store(tmp_path: Path) -> SynthesisCache:
    return SynthesisCache(tmp_path / "cache")


def _entries(store: SynthesisCache) -> list[Path]:
    return sorted(store.directory.glob("??/*.wav"))


def test_hit_does_not_call_the_engine(store: SynthesisCache, tmp_path: Path) -> None:
    engine = CountingEngine()
    first = text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=store)
    assert len(engine.calls) == 1
    # The engine got the normalised text, and that is what the cache is keyed on.
    assert "15" not in engine.calls[0] and "ủy ban nhân dân" in engine.calls[0].lower()
    second = text_to_wav("  " + TEXT + "\n", tmp_path / "b.wav", engine=engine, cache=store)
    assert len(engine.calls) == 1
    assert first.read_bytes() == second.read_bytes()
    assert len(_entries(store)) == 1


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [("voice", {"voice": "vi-vn-x-south"}), ("rate", {"rate_wpm": 220}), ("text", {"text": "Xin chào bà con."})],
)
def test_key_covers_voice_rate_and_text(
    change: str, kwargs: dict[str, Any], store: SynthesisCache, tmp_path: Path
) -> None:
    engine = CountingEngine()
    text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=store)
    args = {"text": TEXT, **kwargs}
    text_to_wav(args.pop("text"), tmp_path / "b.wav", engine=engine, cache=store, **args)
    assert len(engine.calls) == 2, f"a different {change} must miss the cache"
    assert len(_entries(store)) == 2


def test_key_covers_normalizer_version(store: SynthesisCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = CountingEngine()
    text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=store)
    monkeypatch.setattr(cache_module, "NORMALIZER_VERSION", cache_module.NORMALIZER_VERSION + "-next")
    text_to_wav(TEXT, tmp_path / "b.wav", engine=engine, cache=store)
    assert len(engine.calls) == 2


def test_key_covers_engine_settings() -> None:
    base = SynthesisCache.key("xin chào", "espeak-ng", "vi", None, {"backend": "binary"})
    assert base != SynthesisCache.key("xin chào", "espeak-ng", "vi", None, {"backend": "library"})
    assert base != SynthesisCache.key("xin chào", "piper", "vi", None, {"backend": "binary"})
    assert base == SynthesisCache.key("xin chào", "espeak-ng", "vi", None, {"backend": "binary"})


def test_corrupted_entry_is_detected_and_regenerated(store: SynthesisCache, tmp_path: Path) -> None:
    engine = CountingEngine()
    good = text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=store).read_bytes()
    [entry] = _entries(store)
    damaged = bytearray(entry.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte in the samples: still a valid WAV
    entry.write_bytes(bytes(damaged))

    again = text_to_wav(TEXT, tmp_path / "b.wav", engine=engine, cache=store).read_bytes()
    assert len(engine.calls) == 2, "a corrupted entry must not be served"
    assert again == good
    assert entry.read_bytes() == good  # the entry was rewritten
    text_to_wav(TEXT, tmp_path / "c.wav", engine=engine, cache=store)
    assert len(engine.calls) == 2  # and is trusted again


def test_truncated_entry_and_broken_metadata_are_regenerated(store: SynthesisCache, tmp_path: Path) -> None:
    engine = CountingEngine()
    text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=store)
    [entry] = _entries(store)
    entry.write_bytes(entry.read_bytes()[:100])
    text_to_wav(TEXT, tmp_path / "b.wav", engine=engine, cache=store)
    assert len(engine.calls) == 2
    entry.with_suffix(".json").write_text("{not json", encoding="utf-8")
    text_to_wav(TEXT, tmp_path / "c.wav", engine=engine, cache=store)
    assert len(engine.calls) == 3


def test_cache_can_be_bypassed(store: SynthesisCache, tmp_path: Path) -> None:
    engine = CountingEngine()
    text_to_wav(TEXT, tmp_path / "a.wav", engine=engine, cache=False)
    text_to_wav(TEXT, tmp_path / "b.wav", engine=engine, cache=False)
    assert len(engine.calls) == 2
    assert not store.directory.exists()


def test_default_cache_follows_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _isolated_tts_env: Path
) -> None:
    assert default_cache_dir() == _isolated_tts_env
    engine = CountingEngine()
    result = text_to_broadcast_audio(TEXT, tmp_path / "out", engine=engine)
    text_to_broadcast_audio(TEXT, tmp_path / "out", engine=engine)
    assert len(engine.calls) == 1
    assert result.path.is_file()
    assert len(list(_isolated_tts_env.glob("??/*.wav"))) == 1

    monkeypatch.setenv("BCAST_TTS_CACHE", "off")
    assert SynthesisCache.from_env() is None
    text_to_wav(TEXT, tmp_path / "again.wav", engine=engine)
    assert len(engine.calls) == 2

    monkeypatch.delenv("BCAST_TTS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "bcast" / "tts"


def test_prune_keeps_the_cache_under_its_limit(tmp_path: Path) -> None:
    engine = CountingEngine()
    small = SynthesisCache(tmp_path / "cache", max_bytes=1)
    text_to_wav("Xin chào.", tmp_path / "a.wav", engine=engine, cache=small)
    [first] = _entries(small)
    text_to_wav("Tạm biệt.", tmp_path / "b.wav", engine=engine, cache=small)
    [second] = _entries(small)  # the older entry went, the one just written stays
    assert second != first
