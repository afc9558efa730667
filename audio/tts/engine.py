"""The interface every TTS engine implements, and the errors engines raise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class TtsError(Exception):
    """Speech synthesis failed or was asked for something the engine cannot do."""


class EngineUnavailable(TtsError):
    """The engine cannot run on this machine (binary or library missing)."""


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here; `reason` says why not (English, for logs)."""

    ok: bool
    reason: str = ""


class TtsEngine(Protocol):
    """A speech synthesizer that writes a WAV file from text."""

    name: str

    def available(self) -> Availability:
        """Report whether the engine can synthesize on this machine, without raising."""
        ...

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        """Write `text` spoken with `voice` to `out_wav`; raise `TtsError` on failure."""
        ...
