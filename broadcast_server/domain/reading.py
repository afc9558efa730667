"""How a text bulletin is read out: the reading speeds allowed and those the console offers (pure)."""

from __future__ import annotations

# Words a minute a listener can follow from a horn loudspeaker (espeak-ng's own speed is 175).
MIN_RATE_WPM, MAX_RATE_WPM = 80, 300

# The console's choices: slower carries better over echoing horns; None is the engine's own speed.
READING_SPEEDS: dict[str, int | None] = {"slow": 140, "normal": None, "fast": 210}


def rate_problem(rate_wpm: int | None) -> str | None:
    """Why a reading speed is refused, or None when it is allowed (None: the engine's own)."""
    if rate_wpm is None or MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
        return None
    return f"rate_wpm must be between {MIN_RATE_WPM} and {MAX_RATE_WPM} words a minute, got {rate_wpm}"
