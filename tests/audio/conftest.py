"""Fixtures for the audio tests: real ffmpeg and espeak-ng, inputs generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

MakeAudio = Callable[..., Path]

_MISSING = [tool for tool in ("ffmpeg", "ffprobe", "espeak-ng") if shutil.which(tool) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason=f"missing tools: {', '.join(_MISSING)}")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


def lavfi(out: Path, graph: str, *extra: str) -> Path:
    """Write the output of a lavfi source graph to `out` (format from its suffix)."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", graph, *extra, str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def make_audio() -> MakeAudio:
    """The `lavfi` helper, as a fixture so test modules need not import conftest."""
    return lavfi


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio-inputs")


@pytest.fixture(scope="session")
def loud_clipped_wav(audio_dir: Path) -> Path:
    """A 440 Hz sine pushed 20 dB over full scale, hard-clipped by the 16-bit encoder."""
    return lavfi(audio_dir / "loud.wav", "sine=frequency=440:duration=4,volume=20dB", "-c:a", "pcm_s16le")


@pytest.fixture(scope="session")
def quiet_wav(audio_dir: Path) -> Path:
    """A 440 Hz sine peaking around -40 dBFS."""
    return lavfi(audio_dir / "quiet.wav", "sine=frequency=440:duration=4,volume=-22dB", "-c:a", "pcm_s16le")


@pytest.fixture(scope="session")
def silent_wav(audio_dir: Path) -> Path:
    return lavfi(audio_dir / "silent.wav", "anullsrc=r=44100:cl=mono", "-t", "2", "-c:a", "pcm_s16le")


@pytest.fixture(scope="session")
def padded_stereo_wav(audio_dir: Path) -> Path:
    """Stereo, 48 kHz: 1 s of silence, 2 s of tone, 1.5 s of silence."""
    graph = "aevalsrc='if(between(t,1,3),0.3*sin(2*PI*330*t),0)|if(between(t,1,3),0.3*sin(2*PI*330*t),0)':s=48000:d=4.5"
    return lavfi(audio_dir / "padded.wav", graph, "-c:a", "pcm_s16le")
