"""Text to broadcast-ready speech: synthesize with a TTS engine, then render to loudness-normalised MP3."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import unicodedata
from pathlib import Path

from audio.normalize import normalize_text
from audio.render import RenderResult, render
from audio.tts.engine import TtsError
from audio.tts.registry import get_engine


def clean_text(text: str) -> str:
    """NFC-normalise (Vietnamese diacritics arrive decomposed from some keyboards) and collapse whitespace."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_to_wav(
    text: str, out_wav: Path, *, voice: str = "vi", engine: str = "espeak-ng", rate_wpm: int | None = None
) -> Path:
    """Synthesize `text` to `out_wav` as the engine produces it (no loudness processing)."""
    cleaned = clean_text(text)
    if not cleaned:
        raise TtsError("nothing to say: the text is empty")
    # Digits, dates and abbreviations become words first: the engine would otherwise spell them out.
    cleaned = clean_text(normalize_text(cleaned))
    get_engine(engine).synthesize(cleaned, voice, Path(out_wav), rate_wpm=rate_wpm)
    return Path(out_wav)


def text_to_broadcast_audio(
    text: str,
    out_dir: Path,
    *,
    voice: str = "vi",
    engine: str = "espeak-ng",
    target_lufs: float = -16.0,
) -> RenderResult:
    """Speak `text` into `out_dir/<sha256>.mp3` at `target_lufs`; the same audio always gets the same name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bcast-tts-") as work:
        wav = text_to_wav(text, Path(work) / "speech.wav", voice=voice, engine=engine)
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
