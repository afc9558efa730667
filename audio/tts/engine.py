"""The interface every TTS engine implements, and the errors engines raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class TtsError(Exception):
    """Speech synthesis failed or was asked for something the engine cannot do."""


class EngineUnavailable(TtsError):
    """The engine cannot run on this machine (binary, package, voice file or network missing).

    `hint` is an optional Vietnamese sentence telling an operator what to install or configure.
    """

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.hint = hint


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here; `reason` says why not (English, for logs), `hint` what to do (Vietnamese)."""

    ok: bool
    reason: str = ""
    hint: str = ""


class TtsEngine(Protocol):
    """A speech synthesizer that writes a WAV file from text."""

    name: str
    default_voice: str

    def available(self) -> Availability:
        """Report whether the engine can synthesize on this machine, without raising."""
        ...

    def voices(self) -> Mapping[str, str]:
        """Voice ids this engine accepts, each with a short label (may be empty while unavailable)."""
        ...

    def settings(self) -> dict[str, Any]:
        """Everything besides text, voice and rate that changes the audio (part of the cache key)."""
        ...

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        """Write `text` spoken with `voice` to `out_wav`; raise `TtsError` on failure."""
        ...


def require_available(engine: TtsEngine) -> None:
    """Raise `EngineUnavailable` (with the engine's reason and hint) unless `engine` can run here."""
    state = engine.available()
    if not state.ok:
        raise EngineUnavailable(f"{engine.name}: {state.reason}", state.hint)


def check_text(text: str) -> None:
    """Refuse empty text before an engine is started."""
    if not text.strip():
        raise TtsError("nothing to say: the text is empty")


def check_wav(out_wav: Path, engine: str, voice: str) -> None:
    """Raise `TtsError` unless the engine left a WAV with at least one sample frame."""
    if not out_wav.is_file() or out_wav.stat().st_size <= 44:
        raise TtsError(f"{engine} produced no audio for voice {voice!r}")
