"""Text-to-speech engines behind one small interface (`TtsEngine`), chosen by name with `get_engine`."""

from audio.tts.engine import Availability, EngineUnavailable, TtsEngine, TtsError
from audio.tts.registry import configured_engine, get_engine, known_engines

__all__ = [
    "Availability",
    "EngineUnavailable",
    "TtsEngine",
    "TtsError",
    "configured_engine",
    "get_engine",
    "known_engines",
]
