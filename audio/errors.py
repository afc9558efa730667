"""Exceptions raised when an input cannot be turned into broadcast audio.

Each refusal has its own class so callers (CLI, HTTP API) can map it to a precise user message.
"""

from __future__ import annotations


class AudioError(Exception):
    """Base class of every audio processing error."""


class ToolError(AudioError):
    """ffmpeg or ffprobe is missing, timed out or failed unexpectedly."""


class MissingInput(AudioError):
    """The input path does not exist or is not a regular file."""


class NotAudio(AudioError):
    """ffprobe finds no audio stream in the input."""


class TooLarge(AudioError):
    """The input file is bigger than the allowed number of bytes."""


class TooLong(AudioError):
    """The input lasts longer than the allowed number of seconds."""


class SilentAudio(AudioError):
    """The input holds no audible sound (below -70 LUFS, or nothing left after trimming silence)."""


class UnsupportedFormat(AudioError):
    """The requested output format is not one the renderer produces."""


class LoudnessNotReached(AudioError):
    """After correction the output still misses the loudness target or exceeds the true-peak limit."""
