"""The device players: an interrupted item resumes where it was cut, in each player's own syntax."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from speaker_agent.clock import SystemClock
from speaker_agent.player import CommandPlayer, PlayerError, mp3_frame_format

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def mp3(tmp_path: Path, rate: int, seconds: float = 3.0) -> Path:
    path = tmp_path / f"tone-{rate}.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        + ["-ar", str(rate), "-ac", "1", str(path)],
        check=True,
    )
    return path


def recording_player(tmp_path: Path, name: str) -> tuple[CommandPlayer, Path]:
    """A stand-in named like a real player that writes down the arguments it was given."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script, argv_file = folder / name, tmp_path / f"{name}.argv"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return CommandPlayer(clock=SystemClock(), command=[str(script)], volume=50), argv_file


@pytest.mark.parametrize(("rate", "samples"), [(44100, 1152), (48000, 1152), (22050, 576), (24000, 576), (16000, 576)])
def test_mp3_frame_format_reads_the_first_frame_header(tmp_path, rate, samples):
    assert mp3_frame_format(mp3(tmp_path, rate)) == (rate, samples)


def test_a_file_that_is_not_mpeg_audio_is_a_player_error(tmp_path):
    bogus = tmp_path / "x.mp3"
    bogus.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x02ab" + b"\x00" * 100)
    with pytest.raises(PlayerError):
        mp3_frame_format(bogus)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ffplay", ["-ss", "2.000"]), ("mpv", ["--start=2.000"]), ("mpg123", ["-k", str(int(2.0 * 44100 / 1152))])],
)
def test_each_player_is_told_where_to_resume(tmp_path, name, expected):
    player, argv_file = recording_player(tmp_path, name)
    audio = mp3(tmp_path, 44100)
    asyncio.run(player.play(audio, 3.0, label="b", start_s=2.0))
    argv = json.loads(argv_file.read_text())
    assert argv[-1] == str(audio)
    position = argv.index(expected[0])
    assert argv[position : position + len(expected)] == expected


def test_playing_from_the_start_passes_no_seek(tmp_path):
    player, argv_file = recording_player(tmp_path, "ffplay")
    asyncio.run(player.play(mp3(tmp_path, 44100), 3.0, label="b"))
    assert "-ss" not in json.loads(argv_file.read_text())


@pytest.mark.skipif(shutil.which("ffplay") is None, reason="ffplay is not installed")
def test_real_ffplay_resumes_without_a_sound_card(tmp_path, monkeypatch):
    monkeypatch.setitem(os.environ, "SDL_AUDIODRIVER", "dummy")  # no sound device on a test machine
    player = CommandPlayer(clock=SystemClock(), command=["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"])
    outcome = asyncio.run(player.play(mp3(tmp_path, 22050), 3.0, label="b", start_s=2.5))
    assert outcome.completed
