"""Helpers shared by engines that get audio in pieces or in other formats: join and convert to one WAV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audio._tools import media_arg, run_tool
from audio.errors import ToolError
from audio.tts.engine import TtsError

# eSpeak NG's default speaking rate, used as "normal speed" for engines that only know a tempo factor.
NORMAL_RATE_WPM = 175


def tempo_for(rate_wpm: int | None) -> float:
    """Tempo factor for ffmpeg's `atempo` giving `rate_wpm` from an engine speaking at normal rate."""
    if rate_wpm is None:
        return 1.0
    return max(0.5, min(2.0, rate_wpm / NORMAL_RATE_WPM))


def join_to_wav(parts: Sequence[Path], out_wav: Path, *, tempo: float = 1.0) -> None:
    """Decode `parts` (any format ffmpeg reads), join them in order and write one mono 16-bit WAV."""
    if not parts:
        raise TtsError("no audio to join")
    inputs: list[str] = []
    for part in parts:
        inputs += ["-i", media_arg(part)]
    chains = [f"[{i}:a:0]aresample=24000,aformat=sample_fmts=s16:channel_layouts=mono[p{i}]" for i in range(len(parts))]
    labels = "".join(f"[p{i}]" for i in range(len(parts)))
    graph = ";".join(chains) + f";{labels}concat=n={len(parts)}:v=0:a=1"
    if abs(tempo - 1.0) > 1e-3:
        graph += f",atempo={tempo:.4f}"
    graph += "[out]"
    try:
        run_tool(
            [
                "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-y", *inputs,
                "-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_s16le", "-f", "wav", media_arg(out_wav),
            ],
            timeout_s=300,
        )  # fmt: skip
    except ToolError as exc:
        raise TtsError(f"cannot decode the engine's audio: {exc}") from exc
