"""TTS engines and text-to-broadcast speech, with the real espeak-ng."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from audio.measure import measure_loudness, probe
from audio.speech import clean_text, text_to_broadcast_audio
from audio.tts import EngineUnavailable, TtsError, get_engine, known_engines
from audio.tts.espeak import VOICES, EspeakEngine

TEXT = "Kính thưa bà con, ngày mai Ủy ban nhân dân xã tổ chức tiêm phòng cho gia súc tại nhà văn hóa thôn."


def test_registry_knows_espeak() -> None:
    assert "espeak-ng" in known_engines()
    engine = get_engine()
    assert engine.name == "espeak-ng"
    assert engine.available().ok


def test_unknown_engine_lists_known_ones() -> None:
    with pytest.raises(TtsError, match="espeak-ng, piper, viettts, gtts"):
        get_engine("festival")


def test_engine_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_engine().name == "espeak-ng"
    monkeypatch.setenv("BCAST_TTS_ENGINE", "piper")
    assert get_engine().name == "piper"
    monkeypatch.setenv("BCAST_TTS_ENGINE", "vietTTS")
    assert get_engine().name == "viettts"
    monkeypatch.setenv("BCAST_TTS_ENGINE", "gtts")
    assert get_engine().name == "gtts"
    # An explicit name wins over the environment.
    assert get_engine("espeak-ng").name == "espeak-ng"


@pytest.mark.parametrize("voice", sorted(VOICES))
def test_each_voice_synthesizes(voice: str, tmp_path: Path) -> None:
    wav = tmp_path / "out.wav"
    get_engine().synthesize("Xin chào bà con.", voice, wav, rate_wpm=160)
    info = probe(wav)
    assert info.audio_streams == 1
    assert info.duration_s and info.duration_s > 0.3


def test_unknown_voice_raises(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="unknown voice"):
        get_engine().synthesize("Xin chào", "en-us", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_missing_binary_reports_unavailable(tmp_path: Path) -> None:
    engine = EspeakEngine(binary="espeak-ng-does-not-exist", backend="binary")
    state = engine.available()
    assert not state.ok
    assert "not found" in state.reason
    assert "espeak" in state.hint
    with pytest.raises(EngineUnavailable):
        engine.synthesize("Xin chào", "vi", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_text_starting_with_dash_is_spoken_not_parsed(tmp_path: Path) -> None:
    wav = tmp_path / "out.wav"
    get_engine().synthesize("--help -v en", "vi", wav)
    assert probe(wav).duration_s


def test_speech_is_broadcast_ready(tmp_path: Path) -> None:
    result = text_to_broadcast_audio(TEXT, tmp_path, voice="vi-vn-x-south")
    assert result.path == tmp_path / f"{result.sha256}.mp3"
    assert result.path.is_file()
    loudness = measure_loudness(result.path)
    assert loudness.integrated_lufs == pytest.approx(-16.0, abs=1.0)
    assert loudness.true_peak_dbtp <= -1.5
    assert result.integrated_lufs == loudness.integrated_lufs
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]


def test_same_text_gives_same_file(tmp_path: Path) -> None:
    decomposed = "  " + unicodedata.normalize("NFD", "Xin chào bà con,\n  loa   phát thử.") + " "
    first = text_to_broadcast_audio("Xin chào bà con, loa phát thử.", tmp_path)
    second = text_to_broadcast_audio(decomposed, tmp_path)
    assert first.sha256 == second.sha256
    assert len(list(tmp_path.iterdir())) == 1


def test_clean_text() -> None:
    assert clean_text(unicodedata.normalize("NFD", " Ủy  ban\n\txã ")) == "Ủy ban xã"


def test_empty_text_raises(tmp_path: Path) -> None:
    with pytest.raises(TtsError):
        text_to_broadcast_audio(" \n ", tmp_path)
