"""Probe media with ffprobe and measure EBU R128 loudness with ffmpeg's `ebur128` filter.

`render` trusts only these measurements when it reports loudness, and the tests use the same functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio._tools import media_arg, progress_seconds, run_tool, stderr_tail
from audio.errors import NotAudio, ToolError

_SUMMARY_I = re.compile(r"^\s*I:\s+(-?(?:inf|nan|\d+(?:\.\d+)?))\s+LUFS", re.MULTILINE)
_SUMMARY_PEAK = re.compile(r"^\s*Peak:\s+(-?(?:inf|nan|\d+(?:\.\d+)?))\s+dBFS", re.MULTILINE)


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file: container, duration and its first audio stream."""

    format_name: str
    duration_s: float | None
    audio_streams: int
    sample_rate: int | None
    channels: int | None


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS), true peak (dBTP) and decoded duration (s) of a file's first audio stream."""

    integrated_lufs: float
    true_peak_dbtp: float
    duration_s: float


def probe(path: Path) -> MediaInfo:
    """Describe a media file with ffprobe; raise `NotAudio` if ffprobe cannot read it at all."""
    proc = run_tool(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", media_arg(path)],
        timeout_s=60,
        check=False,
    )
    if proc.returncode != 0:
        raise NotAudio(f"{path}: ffprobe cannot read it as media ({stderr_tail(proc.stderr, 2)})")
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(f"ffprobe returned invalid JSON for {path}") from exc
    fmt = data.get("format") or {}
    audio = [s for s in data.get("streams") or [] if s.get("codec_type") == "audio"]
    first = audio[0] if audio else {}
    duration = _float_or_none(fmt.get("duration"))
    if duration is None:
        duration = _float_or_none(first.get("duration"))
    return MediaInfo(
        format_name=str(fmt.get("format_name") or ""),
        duration_s=duration,
        audio_streams=len(audio),
        sample_rate=_int_or_none(first.get("sample_rate")),
        channels=_int_or_none(first.get("channels")),
    )


def measure_loudness(path: Path, *, on_progress: Callable[[float], None] | None = None) -> Loudness:
    """Measure integrated loudness and true peak of the first audio stream with `ebur128=peak=true`."""
    proc = run_tool(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-nostats",
            "-i", media_arg(path),
            "-map", "0:a:0",
            "-af", "ebur128=peak=true:framelog=verbose",
            "-f", "null", "-",
            "-progress", "pipe:1",
        ],
        on_progress=on_progress,
    )  # fmt: skip
    return parse_ebur128_summary(proc.stderr, duration_s=progress_seconds(proc.stdout))


def parse_ebur128_summary(stderr: str, *, duration_s: float) -> Loudness:
    """Read I and true peak from the summary the `ebur128` filter logs at the end of a run."""
    start = stderr.rfind("Summary:")
    if start < 0:
        raise ToolError(f"ffmpeg printed no ebur128 summary: {stderr_tail(stderr)}")
    summary = stderr[start:]
    i_match = _SUMMARY_I.search(summary)
    peak_match = _SUMMARY_PEAK.search(summary)
    if not i_match or not peak_match:
        raise ToolError(f"cannot parse the ebur128 summary: {summary[:400]!r}")
    integrated = float(i_match.group(1))
    peak = float(peak_match.group(1))
    if math.isnan(integrated) or math.isnan(peak):
        raise ToolError("ebur128 reported NaN loudness")
    return Loudness(integrated_lufs=integrated, true_peak_dbtp=peak, duration_s=duration_s)


def _float_or_none(value: object) -> float | None:
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
