"""Find the audible span of a file: where leading silence ends and trailing silence begins.

`silencedetect` plus `atrim` is used instead of `silenceremove`: trimming the tail with `silenceremove`
needs `areverse`, which holds the whole decoded input in memory (an hour is ~700 MB), and its
`stop_periods` option also cuts at pauses inside the speech.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio._tools import media_arg, progress_seconds, run_tool

SILENCE_THRESHOLD_DB = -60.0
MIN_SILENCE_S = 0.2
# Silence kept on each side so that the first syllable is not clipped by the receiver's amplifier wake-up.
PAD_S = 0.1

# Applied first in every ffmpeg pass so that timestamps start at 0 and filters see mono float samples.
DECODE_CHAIN = "asetpts=PTS-STARTPTS,aformat=sample_fmts=flt:channel_layouts=mono"

_EVENT = re.compile(r"silence_(start|end):\s*(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Span:
    """Audible section [start_s, end_s) of a decoding that lasted `decoded_s` seconds."""

    start_s: float
    end_s: float
    decoded_s: float

    @property
    def empty(self) -> bool:
        return self.end_s - self.start_s < 0.01


def audible_span(path: Path, *, limit_s: float, on_progress: Callable[[float], None] | None = None) -> Span:
    """Decode at most `limit_s` seconds of `path` and locate its leading and trailing silence."""
    proc = run_tool(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-nostats",
            "-i", media_arg(path),
            "-map", "0:a:0",
            "-af", f"{DECODE_CHAIN},silencedetect=noise={SILENCE_THRESHOLD_DB}dB:d={MIN_SILENCE_S}",
            "-t", f"{limit_s:.3f}",
            "-f", "null", "-",
            "-progress", "pipe:1",
        ],
        on_progress=on_progress,
    )  # fmt: skip
    return span_from_events(proc.stderr, decoded_s=progress_seconds(proc.stdout))


def span_from_events(stderr: str, *, decoded_s: float) -> Span:
    """Turn `silencedetect` log lines into the audible span, padded by `PAD_S` on each side."""
    silences: list[list[float | None]] = []
    for kind, value in _EVENT.findall(stderr):
        if kind == "start":
            silences.append([float(value), None])
        elif silences and silences[-1][1] is None:
            silences[-1][1] = float(value)
    start, end = 0.0, decoded_s
    if silences and (silences[0][0] or 0.0) <= 0.01:
        start = silences[0][1] if silences[0][1] is not None else decoded_s
    if silences:
        last_start, last_end = silences[-1]
        if last_end is None or last_end >= decoded_s - 0.01:
            end = min(end, last_start or 0.0)
    if end <= start:
        return Span(start_s=start, end_s=start, decoded_s=decoded_s)
    return Span(start_s=max(0.0, start - PAD_S), end_s=min(decoded_s, end + PAD_S), decoded_s=decoded_s)
