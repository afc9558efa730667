"""Look up a TTS engine by name; the default comes from `BCAST_TTS_ENGINE` (else espeak-ng)."""

from __future__ import annotations

import os
from collections.abc import Callable

from audio.tts.engine import TtsEngine, TtsError
from audio.tts.espeak import EspeakEngine
from audio.tts.gtts import GttsEngine
from audio.tts.piper import PiperEngine
from audio.tts.viettts import VietTtsEngine

DEFAULT_ENGINE = EspeakEngine.name

_FACTORIES: dict[str, Callable[[], TtsEngine]] = {
    EspeakEngine.name: EspeakEngine,
    PiperEngine.name: PiperEngine,
    VietTtsEngine.name: VietTtsEngine,
    GttsEngine.name: GttsEngine,
}
_ALIASES = {"espeak": EspeakEngine.name, "espeakng": EspeakEngine.name, "viet-tts": VietTtsEngine.name}


def known_engines() -> tuple[str, ...]:
    """Names accepted by `get_engine`."""
    return tuple(_FACTORIES)


def configured_engine() -> str:
    """The engine chosen by `BCAST_TTS_ENGINE`, or espeak-ng."""
    return os.environ.get("BCAST_TTS_ENGINE", "").strip() or DEFAULT_ENGINE


def get_engine(name: str | None = None) -> TtsEngine:
    """Return a new engine instance (default: `configured_engine()`); raise `TtsError` if `name` is unknown."""
    wanted = (name or configured_engine()).strip().lower()
    wanted = _ALIASES.get(wanted, wanted)
    factory = _FACTORIES.get(wanted)
    if factory is None:
        raise TtsError(f"unknown TTS engine {name or wanted!r}; known engines: {', '.join(known_engines())}")
    return factory()
