"""Loudness measurement, probing and silence detection against known signals."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from audio.errors import NotAudio
from audio.measure import measure_loudness, parse_ebur128_summary, probe
from audio.trim import PAD_S, span_from_events


def test_reference_sine_measures_minus_23_lufs(make_audio: Callable[..., Path], tmp_path: Path) -> None:
    # A 997 Hz sine peaking at -20 dBFS in one channel is -23.0 LUFS by the EBU R128 definition.
    wav = make_audio(tmp_path / "ref.wav", "aevalsrc='0.1*sin(2*PI*997*t)':s=48000:d=5", "-c:a", "pcm_s24le")
    loudness = measure_loudness(wav)
    assert loudness.integrated_lufs == pytest.approx(-23.0, abs=0.2)
    assert loudness.true_peak_dbtp == pytest.approx(-20.0, abs=0.2)
    assert loudness.duration_s == pytest.approx(5.0, abs=0.05)


def test_silence_measures_at_the_floor(silent_wav: Path) -> None:
    loudness = measure_loudness(silent_wav)
    assert loudness.integrated_lufs <= -70.0
    assert loudness.true_peak_dbtp == -math.inf


def test_probe_describes_streams(padded_stereo_wav: Path) -> None:
    info = probe(padded_stereo_wav)
    assert info.audio_streams == 1
    assert info.channels == 2
    assert info.sample_rate == 48000
    assert info.duration_s == pytest.approx(4.5, abs=0.01)


def test_probe_refuses_text(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp3"
    fake.write_text("Đây không phải âm thanh.\n" * 50, encoding="utf-8")
    with pytest.raises(NotAudio):
        probe(fake)


def test_parse_summary_reads_i_and_peak() -> None:
    stderr = (
        "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n"
        "    Threshold: -26.5 LUFS\n\n  Loudness range:\n    LRA:         2.1 LU\n\n"
        "  True peak:\n    Peak:       -1.7 dBFS\n"
    )
    loudness = parse_ebur128_summary(stderr, duration_s=2.5)
    assert (loudness.integrated_lufs, loudness.true_peak_dbtp, loudness.duration_s) == (-16.4, -1.7, 2.5)


def test_span_keeps_inner_pauses() -> None:
    stderr = (
        "silence_start: 0\nsilence_end: 1.0 | silence_duration: 1.0\n"
        "silence_start: 2.0\nsilence_end: 2.5 | silence_duration: 0.5\n"
        "silence_start: 4.0\nsilence_end: 5.0 | silence_duration: 1.0\n"
    )
    span = span_from_events(stderr, decoded_s=5.0)
    assert span.start_s == pytest.approx(1.0 - PAD_S)
    assert span.end_s == pytest.approx(4.0 + PAD_S)
    assert not span.empty


def test_span_of_all_silence_is_empty() -> None:
    span = span_from_events("silence_start: 0\nsilence_end: 3 | silence_duration: 3\n", decoded_s=3.0)
    assert span.empty
