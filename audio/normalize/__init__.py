"""Vietnamese text normalisation: written form (digits, dates, abbreviations) to spoken form for TTS."""

from audio.normalize.abbreviations import Dictionary
from audio.normalize.normalizer import NORMALIZER_VERSION, normalize_text

__all__ = ["NORMALIZER_VERSION", "Dictionary", "normalize_text"]
