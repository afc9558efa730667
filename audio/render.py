"""Turn any audio file into broadcast-ready audio: mono, trimmed, loudness-normalised, true-peak limited.

Two-pass EBU R128 `loudnorm` does the bulk of the work. It is not trusted on its own: when the gain it
needs would push the true peak over the limit (TTS audio peaks near 0 dBFS), it silently falls back to
dynamic mode and lands more than 1 LU under target. So every encoded output is measured with `ebur128`,
and if it misses, the encode is redone from the source with a plain `volume` gain and an `alimiter`
(run at loudnorm's 192 kHz, where sample peaks approximate true peaks). Reported loudness is always
the measurement of the file on disk.

An optional intro and outro jingle are joined to the speech before loudness processing, so the whole
programme lands on target with its parts at their original relative levels.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio._tools import media_arg, run_tool, stderr_tail
from audio.errors import (
    LoudnessNotReached,
    MissingInput,
    NotAudio,
    SilentAudio,
    TooLarge,
    ToolError,
    TooLong,
    UnsupportedFormat,
)
from audio.measure import Loudness, measure_loudness, probe
from audio.trim import DECODE_CHAIN, audible_span

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_SECONDS = 3600.0
SILENCE_LUFS = -70.0
# EBU R128 gates 400 ms blocks: anything shorter has no measurable loudness.
MIN_AUDIBLE_S = 0.4

# Stop correcting once within this many LU of the target; refuse if still further than ACCEPT_LU.
TOLERANCE_LU = 0.5
ACCEPT_LU = 1.0
_MAX_ATTEMPTS = 6
_OVERSAMPLE = 4
# loudnorm's look-ahead window: on anything shorter its second pass does not apply the measured gain.
LOUDNORM_WINDOW_S = 3.0
_LOUDNORM_JSON = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.DOTALL)


@dataclass(frozen=True)
class _Format:
    muxer: str
    sample_rate: int
    codec_args: tuple[str, ...]
    # Head-room under the true-peak limit for loudnorm and the limiter: lossy coding adds overshoot,
    # measured here at about 0.2 dB for MP3 and 0.5 dB for Opus on TTS speech.
    peak_margin_db: float


# MP3 at 44.1 kHz is what every IP speaker decodes; Opus only runs at 48 kHz. 64 kbit/s mono carries
# speech and jingles cleanly to horn loudspeakers (about 300 Hz to 7 kHz), at half the 4G data of 128.
MP3_BITRATE = "64k"
_FORMATS: dict[str, _Format] = {
    "mp3": _Format("mp3", 44100, ("-c:a", "libmp3lame", "-b:a", MP3_BITRATE), 0.3),
    "opus": _Format("opus", 48000, ("-c:a", "libopus", "-b:a", "64k", "-application", "audio"), 0.8),
}
FORMATS: tuple[str, ...] = tuple(_FORMATS)


@dataclass(frozen=True)
class RenderResult:
    """A rendered file and its measured properties (loudness and true peak come from `ebur128`)."""

    path: Path
    sha256: str
    size_bytes: int
    duration_s: float
    integrated_lufs: float
    true_peak_dbtp: float
    format: str


@dataclass(frozen=True)
class Progress:
    """One progress report: `done_s` of `total_s` seconds of audio processed in `stage`.

    Stages, in order: "scan" (silence detection, once per input), "analyse" (first loudnorm pass),
    "encode" (second pass; `attempt` counts corrections) and "verify" (ebur128 of the written file).
    """

    stage: str
    done_s: float
    total_s: float
    attempt: int = 1
    part: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class _Source:
    """One input of the programme (intro, main or outro) and the filter chain that decodes and trims it."""

    role: str
    path: Path
    chain: str
    seconds: float


@dataclass(frozen=True)
class _Measured:
    """First-pass `loudnorm` statistics, fed back to the second pass."""

    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float


def render(
    input: Path,
    output: Path,
    *,
    target_lufs: float = -16.0,
    true_peak_db: float = -1.5,
    fmt: str = "mp3",
    trim_silence: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    intro: Path | None = None,
    outro: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> RenderResult:
    """Render `input` to `output` as mono broadcast audio at `target_lufs` and under `true_peak_db`.

    `intro` and `outro` (jingles) are played before and after the input; the joined programme is what
    gets normalised. `on_progress` receives a `Progress` as ffmpeg works through the audio.
    The output appears atomically (temp file in the same directory, then `os.replace`); on any error
    no new file is left behind. Refusals raise `NotAudio`, `TooLarge`, `TooLong` or `SilentAudio`.
    """
    input, output = Path(input), Path(output)
    spec = _FORMATS.get(fmt)
    if spec is None:
        raise UnsupportedFormat(f"unsupported output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    _check_targets(target_lufs, true_peak_db, max_bytes, max_seconds)
    report = on_progress or (lambda _progress: None)

    roles = [("intro", intro), ("main", input), ("outro", outro)]
    named = [(role, Path(path)) for role, path in roles if path is not None]
    expected = [_check_input(role, path, max_bytes, max_seconds) for role, path in named]
    sources = [
        _prepare(role, path, seconds, trim_silence, max_seconds, report)
        for (role, path), seconds in zip(named, expected, strict=True)
    ]
    total_s = sum(source.seconds for source in sources)
    if total_s > max_seconds:
        raise TooLong(f"{input}: with intro/outro the programme lasts {total_s:.1f} s, over {max_seconds:.0f} s")

    measured = _loudnorm_first_pass(sources, target_lufs, true_peak_db, total_s, report)
    if not measured.input_i > SILENCE_LUFS:
        raise SilentAudio(f"{input}: integrated loudness {measured.input_i} LUFS is below {SILENCE_LUFS} LUFS")

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        loudness = _encode_to_target(sources, tmp, measured, spec, target_lufs, true_peak_db, total_s, report)
        digest = _sha256(tmp)
        size_out = tmp.stat().st_size
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return RenderResult(
        path=output,
        sha256=digest,
        size_bytes=size_out,
        duration_s=loudness.duration_s,
        integrated_lufs=loudness.integrated_lufs,
        true_peak_dbtp=loudness.true_peak_dbtp,
        format=fmt,
    )


def _label(role: str, path: Path) -> str:
    return str(path) if role == "main" else f"{role} {path}"


def _check_input(role: str, path: Path, max_bytes: int, max_seconds: float) -> float:
    """Refuse a missing, oversized, non-audio or over-long file before decoding any of it.

    Returns the duration the container declares (0 if none), used only to scale progress reports.
    """
    label = _label(role, path)
    if not path.is_file():
        raise MissingInput(f"{label}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise TooLarge(f"{label}: {size} bytes is over the limit of {max_bytes} bytes")
    try:
        info = probe(path)
    except NotAudio as exc:
        raise NotAudio(f"{role}: {exc}" if role != "main" else str(exc)) from exc
    if info.audio_streams == 0:
        raise NotAudio(f"{label}: no audio stream found (format {info.format_name or 'unknown'})")
    if info.duration_s is not None and info.duration_s > max_seconds:
        raise TooLong(f"{label}: {info.duration_s:.1f} s is over the limit of {max_seconds:.0f} s")
    return info.duration_s or 0.0


def _prepare(
    role: str, path: Path, expected: float, trim_silence: bool, max_seconds: float, report: ProgressCallback
) -> _Source:
    """Decode `path` once to find its audible span; return the chain that trims it."""
    label = _label(role, path)
    # Decoding once more than the limit catches files whose header understates their length.
    span = audible_span(
        path,
        limit_s=max_seconds + 1.0,
        on_progress=lambda done: report(Progress("scan", done, max(expected, done), part=role)),
    )
    if span.decoded_s > max_seconds:
        raise TooLong(f"{label}: longer than the limit of {max_seconds:.0f} s")
    if span.decoded_s <= 0.0 or (trim_silence and span.empty):
        raise SilentAudio(f"{label}: nothing audible (all silence below -60 dBFS)")
    audible_s = (span.end_s - span.start_s) if trim_silence else span.decoded_s
    if audible_s < MIN_AUDIBLE_S:
        raise SilentAudio(f"{label}: only {audible_s:.2f} s of sound, too short to measure loudness")
    chain = DECODE_CHAIN
    if trim_silence:
        chain += f",atrim=start={span.start_s:.6f}:end={span.end_s:.6f},asetpts=PTS-STARTPTS"
    return _Source(role=role, path=path, chain=chain, seconds=audible_s)


def _graph(sources: list[_Source], tail: str) -> str:
    """A filter graph that decodes every source, joins them in order and applies `tail`, ending in [out]."""
    if len(sources) == 1:
        return f"[0:a:0]{sources[0].chain},{tail}[out]"
    # concat needs one sample rate; loudnorm resamples to 192 kHz internally anyway.
    parts = [
        f"[{i}:a:0]{source.chain},aresample=48000,aformat=sample_fmts=flt:channel_layouts=mono[p{i}]"
        for i, source in enumerate(sources)
    ]
    labels = "".join(f"[p{i}]" for i in range(len(sources)))
    return ";".join(parts) + f";{labels}concat=n={len(sources)}:v=0:a=1,{tail}[out]"


def _inputs(sources: list[_Source]) -> list[str]:
    args: list[str] = []
    for source in sources:
        args += ["-i", media_arg(source.path)]
    return args


def _check_targets(target_lufs: float, true_peak_db: float, max_bytes: int, max_seconds: float) -> None:
    if not -70.0 <= target_lufs <= -5.0:
        raise ValueError(f"target_lufs must be between -70 and -5, got {target_lufs}")
    if not -9.0 <= true_peak_db <= 0.0:
        raise ValueError(f"true_peak_db must be between -9 and 0, got {true_peak_db}")
    if max_bytes <= 0 or max_seconds <= 0:
        raise ValueError("max_bytes and max_seconds must be positive")


def _loudnorm_first_pass(
    sources: list[_Source], target_lufs: float, true_peak_db: float, total_s: float, report: ProgressCallback
) -> _Measured:
    """Measure the trimmed, joined mono programme with `loudnorm` (print_format=json)."""
    graph = _graph(sources, f"loudnorm=I={target_lufs}:TP={true_peak_db}:LRA=11:print_format=json")
    proc = run_tool(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-nostats",
            *_inputs(sources),
            "-filter_complex", graph, "-map", "[out]",
            "-f", "null", "-",
            "-progress", "pipe:1",
        ],
        on_progress=lambda done: report(Progress("analyse", done, total_s)),
    )  # fmt: skip
    match = _LOUDNORM_JSON.search(proc.stderr)
    if match is None:
        raise ToolError(f"loudnorm printed no measurement: {stderr_tail(proc.stderr)}")
    try:
        stats = json.loads(match.group(0))
        return _Measured(
            input_i=float(stats["input_i"]),
            input_tp=float(stats["input_tp"]),
            input_lra=float(stats["input_lra"]),
            input_thresh=float(stats["input_thresh"]),
            target_offset=float(stats["target_offset"]),
        )
    except (KeyError, ValueError) as exc:
        raise ToolError(f"cannot parse the loudnorm measurement: {match.group(0)!r}") from exc


def _encode_to_target(
    sources: list[_Source],
    tmp: Path,
    measured: _Measured,
    spec: _Format,
    target_lufs: float,
    true_peak_db: float,
    total_s: float,
    report: ProgressCallback,
) -> Loudness:
    """Encode with the second loudnorm pass, then measure and correct until the output is on target."""
    # loudnorm stays linear only if the target LRA is at least the measured one.
    lra = min(50.0, max(11.0, math.ceil(measured.input_lra + 1.0)))
    ceiling_db = true_peak_db - spec.peak_margin_db
    loudnorm = (
        f"loudnorm=I={target_lufs}:TP={ceiling_db}:LRA={lra}"
        f":measured_I={measured.input_i}:measured_TP={measured.input_tp}"
        f":measured_LRA={measured.input_lra}:measured_thresh={measured.input_thresh}"
        f":offset={measured.target_offset}:linear=true:print_format=none"
    )
    gain_db = 0.0
    fed_back = (measured.input_i, measured.input_tp, measured.input_lra, measured.input_thresh, measured.target_offset)
    short = total_s < LOUDNORM_WINDOW_S or not all(math.isfinite(v) for v in fed_back)
    if short:
        # loudnorm cannot fill its window and writes near silence (-59 LUFS measured for a 1.2 s phrase), and
        # on some short phrases its first pass reports an infinite offset that its second pass refuses:
        # start from the gain the first pass measured, under the limiter, and correct from there.
        loudnorm = "anull"
        gain_db = max(-40.0, min(40.0, target_lufs - measured.input_i))
    previous: tuple[float, float] | None = None  # (gain_db, measured LUFS) of the last correction
    loudness: Loudness | None = None
    for attempt in range(_MAX_ATTEMPTS):
        tail = loudnorm
        if attempt > 0 or short:
            # The limiter runs at 4x the rate, so it also holds the peaks between samples (true peak).
            limit = max(0.0625, 10 ** (ceiling_db / 20))
            tail += (
                f",volume={gain_db:.3f}dB,aresample={_OVERSAMPLE * spec.sample_rate}"
                f",alimiter=limit={limit:.6f}:level=false:latency=true"
            )
        tail += f",aresample={spec.sample_rate}"
        run_tool(
            [
                "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-y",
                *_inputs(sources),
                "-filter_complex", _graph(sources, tail), "-map", "[out]",
                "-map_metadata", "-1", "-map_chapters", "-1",
                "-ac", "1", "-ar", str(spec.sample_rate),
                *spec.codec_args,
                "-fflags", "+bitexact", "-flags:a", "+bitexact",
                "-f", spec.muxer, media_arg(tmp),
                "-progress", "pipe:1",
            ],
            on_progress=lambda done, n=attempt + 1: report(Progress("encode", done, total_s, attempt=n)),
        )  # fmt: skip
        loudness = measure_loudness(
            tmp, on_progress=lambda done, n=attempt + 1: report(Progress("verify", done, total_s, attempt=n))
        )
        error_lu = target_lufs - loudness.integrated_lufs
        over_db = loudness.true_peak_dbtp - true_peak_db
        if abs(error_lu) <= TOLERANCE_LU and over_db <= 0.0:
            return loudness
        # The limiter eats part of any gain; estimate how much from the last step so this converges fast.
        slope = 1.0
        if previous is not None and gain_db != previous[0]:
            slope = (loudness.integrated_lufs - previous[1]) / (gain_db - previous[0])
            slope = max(0.25, min(1.0, slope))
        previous = (gain_db, loudness.integrated_lufs)
        gain_db = max(-40.0, min(40.0, gain_db + error_lu / slope))
        if over_db > 0.0:
            ceiling_db -= over_db + 0.1
            previous = None  # a new ceiling changes how much the limiter eats: the old slope no longer holds
    assert loudness is not None
    if abs(target_lufs - loudness.integrated_lufs) <= ACCEPT_LU and loudness.true_peak_dbtp <= true_peak_db:
        return loudness
    raise LoudnessNotReached(
        f"{sources[-1].path}: output measured {loudness.integrated_lufs} LUFS / {loudness.true_peak_dbtp} dBTP "
        f"after {_MAX_ATTEMPTS} attempts (target {target_lufs} LUFS, limit {true_peak_db} dBTP)"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
