"""`render`: loudness on target whatever the input level, refusals, and atomic output."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from audio.errors import NotAudio, SilentAudio, TooLarge, TooLong, UnsupportedFormat
from audio.measure import measure_loudness, probe
from audio.render import render

TARGET = -16.0
PEAK_LIMIT = -1.5


def _assert_on_target(path: Path) -> None:
    loudness = measure_loudness(path)
    assert loudness.integrated_lufs == pytest.approx(TARGET, abs=1.0)
    assert loudness.true_peak_dbtp <= PEAK_LIMIT


def test_loud_clipped_input_lands_on_target(loud_clipped_wav: Path, tmp_path: Path) -> None:
    assert measure_loudness(loud_clipped_wav).true_peak_dbtp >= 0.0  # the fixture really clips
    out = tmp_path / "loud.mp3"
    result = render(loud_clipped_wav, out)
    _assert_on_target(out)
    assert result.path == out
    assert result.format == "mp3"
    assert result.size_bytes == out.stat().st_size
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    # What render reports is a measurement of the file it wrote.
    measured = measure_loudness(out)
    assert (result.integrated_lufs, result.true_peak_dbtp) == (measured.integrated_lufs, measured.true_peak_dbtp)


def test_quiet_input_lands_on_target(quiet_wav: Path, tmp_path: Path) -> None:
    assert measure_loudness(quiet_wav).integrated_lufs < -35.0
    out = tmp_path / "quiet.opus"
    result = render(quiet_wav, out, fmt="opus")
    _assert_on_target(out)
    info = probe(out)
    assert (info.channels, info.sample_rate, result.format) == (1, 48000, "opus")


def test_output_is_mono_and_trimmed(padded_stereo_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "trimmed.mp3"
    result = render(padded_stereo_wav, out)
    info = probe(out)
    assert (info.channels, info.sample_rate) == (1, 44100)
    # 2 s of tone plus 0.1 s kept on each side, within MP3 frame granularity.
    assert result.duration_s == pytest.approx(2.2, abs=0.1)

    untrimmed = render(padded_stereo_wav, tmp_path / "untrimmed.mp3", trim_silence=False)
    assert untrimmed.duration_s == pytest.approx(4.5, abs=0.1)


def test_text_file_named_mp3_is_not_audio(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp3"
    fake.write_text("xin chào\n" * 200, encoding="utf-8")
    with pytest.raises(NotAudio):
        render(fake, tmp_path / "out.mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp3"]


def test_image_without_audio_stream_is_not_audio(make_audio: Callable[..., Path], tmp_path: Path) -> None:
    png = make_audio(tmp_path / "pic.png", "color=c=red:s=16x16", "-frames:v", "1")
    with pytest.raises(NotAudio):
        render(png, tmp_path / "out.mp3")
    assert not (tmp_path / "out.mp3").exists()


def test_too_large_is_refused_before_decoding(quiet_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    with pytest.raises(TooLarge):
        render(quiet_wav, out, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_too_long_is_refused(quiet_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    with pytest.raises(TooLong):
        render(quiet_wav, out, max_seconds=1.0)
    assert list(tmp_path.iterdir()) == []


def test_silence_is_refused_and_leaves_nothing(silent_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    with pytest.raises(SilentAudio):
        render(silent_wav, out)
    with pytest.raises(SilentAudio):
        render(silent_wav, out, trim_silence=False)
    assert list(tmp_path.iterdir()) == []


def test_refusal_keeps_an_existing_output(silent_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    out.write_bytes(b"previous render")
    with pytest.raises(SilentAudio):
        render(silent_wav, out)
    assert out.read_bytes() == b"previous render"
    assert list(tmp_path.iterdir()) == [out]


def test_unknown_format_is_refused(quiet_wav: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        render(quiet_wav, tmp_path / "out.flac", fmt="flac")
    assert list(tmp_path.iterdir()) == []


def test_too_short_sound_is_refused(make_audio: Callable[..., Path], tmp_path: Path) -> None:
    blip = make_audio(tmp_path / "blip.wav", "sine=frequency=1000:duration=0.2")
    with pytest.raises(SilentAudio, match="too short"):
        render(blip, tmp_path / "out.mp3")
    assert list(tmp_path.iterdir()) == [blip]
