"""Fixtures for the audio tests: real ffmpeg and espeak-ng, inputs generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from audio.tts.espeak import EspeakEngine

MakeAudio = Callable[..., Path]

_MISSING = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
# eSpeak NG may come from the Debian binary or from the espeakng-loader wheel: either will do.
_ESPEAK = EspeakEngine().available()
if not _ESPEAK.ok:
    _MISSING.append(f"espeak-ng ({_ESPEAK.reason})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason=f"missing tools: {', '.join(_MISSING)}")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


# Engine settings from the machine's environment must not leak into the tests.
_ENGINE_ENV_PREFIXES = ("BCAST_TTS_", "BCAST_ESPEAK_", "BCAST_PIPER_", "BCAST_VIETTTS_", "BCAST_GTTS_")


@pytest.fixture(autouse=True)
def _isolated_tts_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clear engine configuration and give each test its own, empty synthesis cache."""
    for name in list(os.environ):
        if name.startswith(_ENGINE_ENV_PREFIXES):
            monkeypatch.delenv(name)
    cache_dir = tmp_path_factory.mktemp("tts-cache")
    monkeypatch.setenv("BCAST_TTS_CACHE_DIR", str(cache_dir))
    return cache_dir


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


@pytest.fixture(scope="session")
def speech_wav(audio_dir: Path) -> Path:
    """Real espeak-ng Vietnamese speech (about 7 s), peaking near 0 dBFS as TTS output does."""
    out = audio_dir / "speech.wav"
    text = (
        "Kính thưa bà con, ngày mai Ủy ban nhân dân xã tổ chức tiêm phòng cho gia súc tại nhà văn hóa thôn. "
        "Đề nghị bà con chú ý."
    )
    EspeakEngine().synthesize(text, "vi", out)
    return out
