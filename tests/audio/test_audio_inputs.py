"""What people actually send (phone formats), Opus output of TTS, intro/outro jingles and render progress.

Every loudness figure is measured on the written file with ffmpeg's own `ebur128` filter.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audio.cli import audio_app
from audio.errors import MissingInput, NotAudio, SilentAudio
from audio.measure import measure_loudness, probe
from audio.render import Progress, render
from audio.tts.espeak import EspeakEngine

TARGET = -16.0
PEAK_LIMIT = -1.5


@cache
def _encoders() -> frozenset[str]:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return frozenset(m.group(1) for m in re.finditer(r"^\s*A\S*\s+(\S+)", out, re.MULTILINE))


@dataclass(frozen=True)
class InputFormat:
    """How a phone or PC would have produced the file: ffmpeg encoder and arguments, and the container."""

    suffix: str
    encoder: str
    args: tuple[str, ...]
    container: str  # a name ffprobe reports in format_name


FORMATS = {
    "mp3": InputFormat(".mp3", "libmp3lame", ("-b:a", "64k"), "mp3"),
    "wav": InputFormat(".wav", "pcm_s16le", (), "wav"),
    "m4a-aac": InputFormat(".m4a", "aac", ("-b:a", "64k"), "mp4"),
    "ogg-vorbis": InputFormat(".ogg", "libvorbis", ("-q:a", "3"), "ogg"),
    "ogg-opus": InputFormat(".opus", "libopus", ("-b:a", "24k"), "ogg"),
    "flac": InputFormat(".flac", "flac", (), "flac"),
    "3gp-aac": InputFormat(".3gp", "aac", ("-ar", "16000", "-b:a", "24k"), "3gp"),
    "amr-nb": InputFormat(".amr", "libopencore_amrnb", ("-ar", "8000", "-b:a", "12.2k"), "amr"),
    "3gp-amr": InputFormat(".3gp", "libopencore_amrnb", ("-ar", "8000", "-b:a", "12.2k"), "3gp"),
}


@pytest.fixture(scope="module")
def phone_speech(speech_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The espeak-ng speech made quiet and stereo, as a phone held too far away might record it."""
    out = tmp_path_factory.mktemp("phone") / "phone.wav"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-i", str(speech_wav),
         "-af", "volume=-24dB", "-ac", "2", "-c:a", "pcm_s16le", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _assert_on_target(path: Path) -> None:
    loudness = measure_loudness(path)
    assert loudness.integrated_lufs == pytest.approx(TARGET, abs=1.0), loudness
    assert loudness.true_peak_dbtp <= PEAK_LIMIT, loudness


@pytest.mark.parametrize("name", list(FORMATS))
def test_render_reads_what_people_send(name: str, phone_speech: Path, tmp_path: Path) -> None:
    spec = FORMATS[name]
    if spec.encoder not in _encoders():
        pytest.skip(f"this ffmpeg has no {spec.encoder} encoder, so it cannot make a {name} file to read")
    source = tmp_path / f"input{spec.suffix}"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-i", str(phone_speech),
         "-c:a", spec.encoder, *spec.args, str(source)],
        check=True,
    )  # fmt: skip
    assert spec.container in probe(source).format_name
    assert measure_loudness(source).integrated_lufs < -35.0  # the input really is quiet
    out = tmp_path / "out.mp3"
    result = render(source, out)
    _assert_on_target(out)
    assert probe(out).channels == 1
    assert result.duration_s == pytest.approx(probe(phone_speech).duration_s, abs=0.6)


def _hand_built_amr(out: Path, seconds: float = 4.0) -> Path:
    """A valid AMR-NB file (RFC 4867 storage format) of 12.2 kbit/s frames with random parameters.

    This ffmpeg has decoders for AMR but no encoder; random codec parameters still decode to sound
    (noise-like), which is what the reader needs to be tested on.
    """
    rng = random.Random(12)
    frame_type = 7  # MR122: 31 bytes of payload per 20 ms
    frames = [bytes([frame_type << 3 | 0x04]) + rng.randbytes(31) for _ in range(int(seconds * 50))]
    out.write_bytes(b"#!AMR\n" + b"".join(frames))
    return out


@pytest.mark.parametrize("container", ["amr", "3gp"])
def test_render_reads_amr_from_phones(container: str, tmp_path: Path) -> None:
    amr = _hand_built_amr(tmp_path / "voice.amr")
    source = amr
    if container == "3gp":
        source = tmp_path / "voice.3gp"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-i", str(amr), "-c:a", "copy", str(source)],
            check=True,
        )  # fmt: skip
    info = probe(source)
    assert container in info.format_name and info.sample_rate == 8000
    out = tmp_path / "out.mp3"
    render(source, out)
    _assert_on_target(out)


def test_tts_to_opus_stays_under_the_peak_limit(speech_wav: Path, tmp_path: Path) -> None:
    # TTS peaks sit at full scale: a plain loudnorm + Opus encode overshoots the limit.
    assert measure_loudness(speech_wav).true_peak_dbtp >= -0.5
    out = tmp_path / "speech.opus"
    result = render(speech_wav, out, fmt="opus")
    _assert_on_target(out)
    assert result.true_peak_dbtp <= PEAK_LIMIT
    assert (probe(out).sample_rate, probe(out).channels) == (48000, 1)


@pytest.mark.parametrize(
    ("text", "voice", "rate_wpm"),
    [
        ("Kinh phí và nguồn vốn:", "vi", None),  # 1.2 s: loudnorm wrote it at -59 LUFS, refused at -19.4
        ("Nước sông đang lên, bà con di dời ngay.", "vi-vn-x-central", 140),  # refused at -1.4 dBTP
        ("- Thường xuyên tổ chức tập huấn", "vi", 210),  # loudnorm measured offset=inf: ffmpeg failed (a 500)
    ],
    ids=["shorter-than-loudnorms-window", "true-peak-over", "infinite-offset"],
)
def test_a_short_spoken_phrase_is_rendered_on_target(text: str, voice: str, rate_wpm: int | None, tmp_path: Path):
    """Short phrases used to fail (bench/audio_short_phrases.py: 5 of 180 refused, and a crash): loudnorm does
    nothing useful under its 3 s window, and a limiter at the sample rate let true peaks through."""
    wav = tmp_path / "phrase.wav"
    EspeakEngine().synthesize(text, voice, wav, rate_wpm=rate_wpm)
    out = tmp_path / "phrase.mp3"
    render(wav, out, fmt="mp3")
    _assert_on_target(out)


# ------------------------------------------------------------------------------------------ jingles


@pytest.fixture(scope="module")
def jingles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("jingles")
    intro, outro = folder / "intro.mp3", folder / "outro.ogg"
    for out, codec in ((intro, "libmp3lame"), (outro, "libvorbis")):
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
             "-i", "sine=frequency=880:duration=1.5,volume=12dB", "-ac", "2", "-c:a", codec, str(out)],
            check=True,
        )  # fmt: skip
    return intro, outro


def _mean_volume(path: Path, start: float, length: float) -> float:
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-ss", f"{start}", "-t", f"{length}", "-i", str(path),
         "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(re.search(r"mean_volume:\s*(-?[\d.]+) dB", proc.stderr).group(1))


def test_intro_and_outro_frame_the_bulletin(
    make_audio: Callable[..., Path], jingles: tuple[Path, Path], tmp_path: Path
) -> None:
    intro, outro = jingles
    # 3 s of a steady tone 10 dB under the jingles (peak 0.5 vs 0.158), padded with silence that must be trimmed.
    main = make_audio(
        tmp_path / "main.wav",
        "aevalsrc='if(between(t,0.5,3.5),0.158*sin(2*PI*440*t),0)':s=44100:d=4.5",
        "-c:a", "pcm_s16le",
    )  # fmt: skip
    out = tmp_path / "programme.mp3"
    result = render(main, out, intro=intro, outro=outro)
    _assert_on_target(out)
    # 1.5 + 3 + 1.5 s of sound; the bulletin's silence is trimmed to 0.1 s on either side.
    assert result.duration_s == pytest.approx(1.5 + 3.2 + 1.5, abs=0.1)
    head = _mean_volume(out, 0.3, 1.0)
    middle = _mean_volume(out, 2.3, 2.0)
    tail = _mean_volume(out, 5.0, 1.0)
    # The jingles come first and last, and the whole programme was normalised as one: the 10 dB gap stays.
    assert head - middle == pytest.approx(10.0, abs=1.5)
    assert tail - middle == pytest.approx(10.0, abs=1.5)


def test_bad_jingles_are_refused_and_leave_nothing(
    jingles: tuple[Path, Path], quiet_wav: Path, silent_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp3"
    with pytest.raises(MissingInput, match="intro"):
        render(quiet_wav, out, intro=tmp_path / "missing.mp3")
    text = tmp_path / "notes.ogg"
    text.write_text("không phải âm thanh", encoding="utf-8")
    with pytest.raises(NotAudio, match="outro"):
        render(quiet_wav, out, outro=text)
    with pytest.raises(SilentAudio, match="intro"):
        render(quiet_wav, out, intro=silent_wav, outro=jingles[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.ogg"]


def test_render_command_takes_jingles(jingles: tuple[Path, Path], quiet_wav: Path, tmp_path: Path) -> None:
    root = typer.Typer()
    root.add_typer(audio_app, name="audio")
    out = tmp_path / "out.mp3"
    args = ["audio", "render", str(quiet_wav), "-o", str(out), "--intro", str(jingles[0]), "--outro", str(jingles[1])]
    result = CliRunner().invoke(root, [*args, "--progress"])
    assert result.exit_code == 0, result.output
    assert probe(out).duration_s == pytest.approx(1.5 + 4.0 + 1.5, abs=0.1)
    # Progress is drawn on stderr, one line per stage, never mixed into the result on stdout.
    for label in ("Dò khoảng lặng (nhạc mở đầu)", "Dò khoảng lặng (bản tin)", "Đo độ lớn", "Mã hoá", "Kiểm tra độ lớn"):
        assert label in result.stderr
    assert "━" not in result.stdout
    quiet = CliRunner().invoke(root, [*args, "--no-progress"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


# ----------------------------------------------------------------------------------------- progress


def test_render_reports_progress_through_every_stage(speech_wav: Path, tmp_path: Path) -> None:
    events: list[Progress] = []
    result = render(speech_wav, tmp_path / "out.mp3", on_progress=events.append)
    stages = [e.stage for e in events]
    assert stages[0] == "scan" and stages[-1] == "verify"
    assert {"scan", "analyse", "encode", "verify"} == set(stages)
    # Within one pass, progress only moves forward and ends at the length of the audio.
    passes: dict[tuple[str, int, str], list[Progress]] = {}
    for event in events:
        passes.setdefault((event.stage, event.attempt, event.part), []).append(event)
    for key, seq in passes.items():
        done = [e.done_s for e in seq]
        assert done == sorted(done), key
        assert done[-1] == pytest.approx(seq[-1].total_s, abs=0.1), key
    last_verify = passes[max(k for k in passes if k[0] == "verify")]
    assert last_verify[-1].total_s == pytest.approx(result.duration_s, abs=0.1)
