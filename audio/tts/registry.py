"""Look up a TTS engine by name."""

from __future__ import annotations

from collections.abc import Callable

from audio.tts.engine import TtsEngine, TtsError
from audio.tts.espeak import EspeakEngine

_FACTORIES: dict[str, Callable[[], TtsEngine]] = {
    EspeakEngine.name: EspeakEngine,
}


def known_engines() -> tuple[str, ...]:
    """Names accepted by `get_engine`."""
    return tuple(_FACTORIES)


def get_engine(name: str = "espeak-ng") -> TtsEngine:
    """Return a new engine instance; raise `TtsError` listing the known engines if `name` is unknown."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise TtsError(f"unknown TTS engine {name!r}; known engines: {', '.join(known_engines())}")
    return factory()
