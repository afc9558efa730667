"""Text to broadcast-ready speech: normalise, synthesize (through the cache), render to loudness-normalised MP3."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Literal

from audio.normalize import normalize_text
from audio.render import RenderResult, render
from audio.tts.cache import SynthesisCache
from audio.tts.engine import TtsEngine, TtsError
from audio.tts.registry import get_engine

_LOG = logging.getLogger(__name__)

CacheChoice = SynthesisCache | Literal[False] | None


def clean_text(text: str) -> str:
    """NFC-normalise (Vietnamese diacritics arrive decomposed from some keyboards) and collapse whitespace."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def spoken_form(text: str) -> str:
    """The text an engine receives: cleaned, with digits, dates and abbreviations read out as words."""
    cleaned = clean_text(text)
    if not cleaned:
        raise TtsError("nothing to say: the text is empty")
    return clean_text(normalize_text(cleaned))


def _resolve(engine: str | TtsEngine | None) -> TtsEngine:
    return get_engine(engine) if engine is None or isinstance(engine, str) else engine


def text_to_wav(
    text: str,
    out_wav: Path,
    *,
    voice: str | None = None,
    engine: str | TtsEngine | None = None,
    rate_wpm: int | None = None,
    cache: CacheChoice = None,
) -> Path:
    """Synthesize `text` to `out_wav` as the engine produces it (no loudness processing).

    `engine` is a name (default: `BCAST_TTS_ENGINE`, else espeak-ng) or an engine instance; `voice`
    defaults to the engine's. `cache`: None uses the configured cache, False bypasses it.
    A cache hit copies the stored WAV and never starts the engine.
    """
    spoken = spoken_form(text)
    tts = _resolve(engine)
    voice = voice or tts.default_voice
    out_wav = Path(out_wav)
    store = SynthesisCache.from_env() if cache is None else (cache or None)
    if store is None:
        tts.synthesize(spoken, voice, out_wav, rate_wpm=rate_wpm)
        return out_wav

    key = store.key(spoken, tts.name, voice, rate_wpm, tts.settings())
    try:
        hit = store.get(key)
    except OSError as exc:  # an unreadable cache must never stop a bulletin
        _LOG.warning("TTS cache lookup failed: %s", exc)
        hit = None
    if hit is not None:
        shutil.copyfile(hit, out_wav)
        return out_wav
    tts.synthesize(spoken, voice, out_wav, rate_wpm=rate_wpm)
    try:
        store.put(key, out_wav, {"engine": tts.name, "voice": voice, "chars": len(spoken)})
    except OSError as exc:
        _LOG.warning("TTS cache write failed: %s", exc)
    return out_wav


def text_to_broadcast_audio(
    text: str,
    out_dir: Path,
    *,
    voice: str | None = None,
    engine: str | TtsEngine | None = None,
    rate_wpm: int | None = None,
    target_lufs: float = -16.0,
    cache: CacheChoice = None,
) -> RenderResult:
    """Speak `text` into `out_dir/<sha256>.mp3` at `target_lufs`; the same audio always gets the same name.

    `rate_wpm`: words a minute (None: the engine's own speed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bcast-tts-") as work:
        wav = text_to_wav(text, Path(work) / "speech.wav", voice=voice, engine=engine, rate_wpm=rate_wpm, cache=cache)
        # Render next to the final file so the rename below stays on one filesystem.
        fd, staging_name = tempfile.mkstemp(prefix=".speech-", suffix=".mp3", dir=out_dir)
        os.close(fd)
        staging = Path(staging_name)
        try:
            result = render(wav, staging, target_lufs=target_lufs, fmt="mp3")
            final = out_dir / f"{result.sha256}.mp3"
            os.replace(staging, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            raise
    return dataclasses.replace(result, path=final)
