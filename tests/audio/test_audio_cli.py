"""`bcast tts` and `bcast audio` through Typer's test runner, mounted as bcast/cli.py mounts them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audio.cli import audio_app, tts_app
from audio.measure import measure_loudness


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(tts_app, name="tts")
    root.add_typer(audio_app, name="audio")
    return root


def test_say_writes_normalised_mp3(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "thongbao.mp3"
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào bà con", "-o", str(out), "--voice", "vi"])
    assert result.exit_code == 0, result.output
    assert "LUFS" in result.stdout
    assert measure_loudness(out).integrated_lufs == pytest.approx(-16.0, abs=1.0)


def test_say_wav_is_raw(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "raw.wav"
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "chưa chuẩn hoá" in result.stdout
    assert out.is_file()


def test_say_unknown_voice_fails_in_vietnamese(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "x.mp3"
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào", "-o", str(out), "--voice", "klingon"])
    assert result.exit_code == 2
    assert "Lỗi tổng hợp giọng nói" in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_render_prints_result(app: typer.Typer, quiet_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.opus"
    result = CliRunner().invoke(app, ["audio", "render", str(quiet_wav), "-o", str(out), "--format", "opus"])
    assert result.exit_code == 0, result.output
    assert "SHA-256:" in result.stdout
    assert "Độ lớn:" in result.stdout


def test_render_refusal_exits_2(app: typer.Typer, silent_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    result = CliRunner().invoke(app, ["audio", "render", str(silent_wav), "-o", str(out)])
    assert result.exit_code == 2
    assert "im lặng" in result.stderr
    assert not out.exists()
