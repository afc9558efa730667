"""eSpeak NG through libespeak-ng from the espeakng-loader wheel, as on a pip-only install without the binary."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audio.cli import tts_app
from audio.measure import measure_loudness, probe
from audio.tts.espeak import VOICES, EspeakEngine

espeakng_loader = pytest.importorskip("espeakng_loader", reason="the espeakng-loader wheel is not installed")

NO_BINARY = "/nonexistent/bin/espeak-ng"
TEXT = "Kính thưa bà con, hôm nay xã tổ chức tiêm phòng cho gia súc."


def _frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.readframes(wav.getnframes())


def test_library_is_used_when_the_binary_is_missing() -> None:
    engine = EspeakEngine(binary=NO_BINARY)
    state = engine.available()
    assert state.ok, state.reason
    assert "espeakng-loader" in state.reason
    assert engine.backend() == "library"
    assert engine.settings()["backend"] == "library"


def test_library_speaks_every_voice(tmp_path: Path) -> None:
    engine = EspeakEngine(binary=NO_BINARY)
    audio: dict[str, bytes] = {}
    for voice in VOICES:
        out = tmp_path / f"{voice}.wav"
        engine.synthesize(TEXT, voice, out)
        info = probe(out)
        assert info.audio_streams == 1 and info.sample_rate == 22050
        assert info.duration_s is not None and info.duration_s > 2.0
        assert measure_loudness(out).integrated_lufs > -40.0  # speech, not silence
        audio[voice] = _frames(out)
    # Bắc, Trung and Nam are three different voices, not one voice three times.
    assert len(set(audio.values())) == len(VOICES)


def test_library_rate_changes_duration(tmp_path: Path) -> None:
    engine = EspeakEngine(binary=NO_BINARY)
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    engine.synthesize(TEXT, "vi", slow, rate_wpm=120)
    engine.synthesize(TEXT, "vi", fast, rate_wpm=360)
    assert len(_frames(fast)) < 0.6 * len(_frames(slow))


def test_neither_binary_nor_library_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeakng_loader, "get_data_path", lambda: str(Path(NO_BINARY).parent))
    state = EspeakEngine(binary=NO_BINARY).available()
    assert not state.ok
    assert "not found" in state.reason and "vi_dict" in state.reason


def test_say_works_without_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BCAST_ESPEAK_BINARY", NO_BINARY)
    root = typer.Typer()
    root.add_typer(tts_app, name="tts")
    out = tmp_path / "thongbao.mp3"
    result = CliRunner().invoke(root, ["tts", "say", "Xin chào bà con, loa phát thử.", "-o", str(out)])
    assert result.exit_code == 0, result.output
    loudness = measure_loudness(out)
    assert loudness.integrated_lufs == pytest.approx(-16.0, abs=1.0)
    assert loudness.true_peak_dbtp <= -1.5
