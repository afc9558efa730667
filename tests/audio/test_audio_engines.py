"""Optional engines: piper (local voice file), vietTTS (local checkout) and the gTTS-protocol online engine.

No weights can be downloaded here, so piper runs a tiny voice model built in the test with the `onnx`
package (a tone whose length follows the phoneme count and `length_scale`, whose pitch follows the
speaker id), through the real piper-tts package and its `piper` command. The online engine talks to a
loopback HTTP server started by the test; nothing leaves the machine.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import wave
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import typer
from typer.testing import CliRunner

from audio.cli import tts_app
from audio.measure import measure_loudness, probe
from audio.speech import text_to_broadcast_audio
from audio.tts import EngineUnavailable, TtsError, get_engine
from audio.tts.gtts import GttsEngine, split_text
from audio.tts.piper import PiperEngine
from audio.tts.viettts import CHECKPOINTS, VietTtsEngine

TEXT = "Kính thưa bà con. Ngày mai, thôn Đông tổ chức tiêm phòng cho gia súc tại nhà văn hóa."


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(tts_app, name="tts")
    return root


def _samples(path: Path) -> tuple[int, list[int]]:
    with wave.open(str(path), "rb") as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    values = memoryview(frames).cast("h").tolist()
    return rate, values


def _zero_crossings_per_s(path: Path) -> float:
    rate, values = _samples(path)
    crossings = sum(1 for a, b in zip(values, values[1:], strict=False) if (a < 0) != (b < 0))
    return crossings * rate / max(1, len(values))


# ---------------------------------------------------------------------------------------------- piper


def _build_tone_voice(out: Path) -> Path:
    """Write a piper-compatible voice (`out` + `out.json`): inputs input/input_lengths/scales/sid."""
    onnx = pytest.importorskip("onnx", reason="the onnx package (to build a test voice) is not installed")
    phoneme_ids = pytest.importorskip("piper.phoneme_ids", reason="the piper-tts package is not installed")
    helper, tp = onnx.helper, onnx.TensorProto
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "one_i"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["n_f"], to=tp.FLOAT),
        helper.make_node("Gather", ["scales", "one_i"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["n_f", "hop"], ["t0"]),
        helper.make_node("Mul", ["t0", "length_scale"], ["t"]),
        helper.make_node("Range", ["zero_f", "t", "one_f"], ["idx"]),
        helper.make_node("Cast", ["sid"], ["sid_f"], to=tp.FLOAT),
        helper.make_node("Add", ["sid_f", "one_f"], ["pitch"]),
        helper.make_node("Mul", ["idx", "omega"], ["phase0"]),
        helper.make_node("Mul", ["phase0", "pitch"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "out_shape"], ["output"]),
    ]
    constants = [
        helper.make_tensor("one_i", tp.INT64, [], [1]),
        helper.make_tensor("zero_f", tp.FLOAT, [], [0.0]),
        helper.make_tensor("one_f", tp.FLOAT, [], [1.0]),
        helper.make_tensor("hop", tp.FLOAT, [], [256.0]),
        helper.make_tensor("omega", tp.FLOAT, [], [2 * math.pi * 220 / 22050]),
        helper.make_tensor("amp", tp.FLOAT, [], [0.5]),
        helper.make_tensor("out_shape", tp.INT64, [3], [1, 1, -1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tone",
        [
            helper.make_tensor_value_info("input", tp.INT64, [1, None]),
            helper.make_tensor_value_info("input_lengths", tp.INT64, [1]),
            helper.make_tensor_value_info("scales", tp.FLOAT, [3]),
            helper.make_tensor_value_info("sid", tp.INT64, [1]),
        ],
        [helper.make_tensor_value_info("output", tp.FLOAT, [1, 1, None])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    config = {
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "vi"},
        "phoneme_type": "espeak",
        "num_symbols": 256,
        "num_speakers": 2,
        "speaker_id_map": {"bac": 0, "nam": 1},
        "phoneme_id_map": phoneme_ids.DEFAULT_PHONEME_ID_MAP,
    }
    Path(f"{out}.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def tone_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tone_voice(tmp_path_factory.mktemp("piper") / "vi_VN-tone.onnx")


def _expected_samples(voice_path: Path, text: str, length_scale: float) -> int:
    """What the tone voice must output for `text`: piper's own phoneme ids, times hop, times length_scale."""
    from piper import PiperVoice

    voice = PiperVoice.load(voice_path)
    return sum(int(len(voice.phonemes_to_ids(p)) * 256 * length_scale) for p in voice.phonemize(text) if p)


def test_piper_without_model_is_unavailable(tmp_path: Path) -> None:
    state = PiperEngine().available()
    assert not state.ok
    assert "BCAST_PIPER_MODEL is not set" in state.reason
    assert "BCAST_PIPER_MODEL" in state.hint
    with pytest.raises(EngineUnavailable, match="BCAST_PIPER_MODEL"):
        PiperEngine().synthesize("Xin chào", "default", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_piper_missing_or_broken_voice_is_unavailable(tmp_path: Path) -> None:
    missing = PiperEngine(tmp_path / "vi_VN-nothing.onnx").available()
    assert not missing.ok and "does not exist" in missing.reason
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"not a model")
    no_config = PiperEngine(model).available()
    assert not no_config.ok and "voice.onnx.json does not exist" in no_config.reason
    Path(f"{model}.json").write_text('{"audio": {}}', encoding="utf-8")
    broken = PiperEngine(model).available()
    assert not broken.ok and "not a valid piper config" in broken.reason


def test_piper_without_package_or_binary_is_unavailable(tone_voice: Path) -> None:
    state = PiperEngine(tone_voice, backend="binary", binary="/nonexistent/piper").available()
    assert not state.ok
    assert "/nonexistent/piper binary not found" in state.reason


def test_piper_python_backend_synthesizes(tone_voice: Path, tmp_path: Path) -> None:
    engine = PiperEngine(tone_voice, backend="python")
    assert engine.available().ok, engine.available().reason
    normal, fast, south = tmp_path / "normal.wav", tmp_path / "fast.wav", tmp_path / "south.wav"
    engine.synthesize(TEXT, "vi", normal)
    engine.synthesize(TEXT, "default", fast, rate_wpm=350)
    engine.synthesize(TEXT, "nam", south)
    rate, samples = _samples(normal)
    assert rate == 22050
    assert len(samples) == _expected_samples(tone_voice, TEXT, 1.0)
    assert len(_samples(fast)[1]) == _expected_samples(tone_voice, TEXT, 0.5)
    # Speaker "nam" (id 1) doubles the pitch of the tone voice.
    assert _zero_crossings_per_s(south) == pytest.approx(2 * _zero_crossings_per_s(normal), rel=0.05)
    with pytest.raises(TtsError, match="unknown voice 'trung'"):
        engine.synthesize(TEXT, "trung", tmp_path / "x.wav")


def test_piper_binary_backend_synthesizes(tone_voice: Path, tmp_path: Path) -> None:
    binary = shutil.which("piper") or str(Path(sys.executable).with_name("piper"))
    if not Path(binary).is_file():
        pytest.skip("no piper command installed")
    engine = PiperEngine(tone_voice, backend="binary", binary=binary)
    out = tmp_path / "out.wav"
    engine.synthesize("-v " + TEXT, "nam", out, rate_wpm=350)
    assert len(_samples(out)[1]) == _expected_samples(tone_voice, "-v " + TEXT, 0.5)


def test_piper_speech_becomes_broadcast_audio(
    tone_voice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCAST_TTS_ENGINE", "piper")
    monkeypatch.setenv("BCAST_PIPER_MODEL", str(tone_voice))
    result = text_to_broadcast_audio("Ngày 2/9 nghỉ lễ.", tmp_path, voice="vi")
    loudness = measure_loudness(result.path)
    assert loudness.integrated_lufs == pytest.approx(-16.0, abs=1.0)
    assert loudness.true_peak_dbtp <= -1.5


# -------------------------------------------------------------------------------------------- vietTTS


def test_viettts_without_directory_is_unavailable(tmp_path: Path) -> None:
    engine = VietTtsEngine()
    state = engine.available()
    assert not state.ok and "BCAST_VIETTTS_DIR is not set" in state.reason
    assert "BCAST_VIETTTS_DIR" in state.hint
    with pytest.raises(EngineUnavailable):
        engine.synthesize("Xin chào", "default", tmp_path / "out.wav")


def test_viettts_without_checkpoints_is_unavailable(tmp_path: Path) -> None:
    state = VietTtsEngine(tmp_path).available()
    assert not state.ok
    assert "model files missing" in state.reason and "acoustic_latest_ckpt.pickle" in state.reason


def test_viettts_without_package_is_unavailable(tmp_path: Path) -> None:
    for rel in CHECKPOINTS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "assets/infore/lexicon.txt").write_text("xin\tx i n\n", encoding="utf-8")
    state = VietTtsEngine(tmp_path, python=sys.executable).available()
    assert not state.ok
    assert "cannot import" in state.reason and "vietTTS.synthesizer" in state.reason
    gone = VietTtsEngine(tmp_path, python="/nonexistent/python3").available()
    assert not gone.ok and "cannot run /nonexistent/python3" in gone.reason


# --------------------------------------------------------------------------------------- gTTS protocol


@pytest.fixture(scope="module")
def mp3_reply(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """0.5 s of a 440 Hz tone as MP3, what a gTTS server sends back for one piece of text."""
    out = tmp_path_factory.mktemp("gtts") / "piece.mp3"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=0.5:sample_rate=24000", "-ac", "1", "-c:a", "libmp3lame", str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


class _Server:
    def __init__(self, reply: Callable[[dict[str, list[str]]], tuple[int, str, bytes]]) -> None:
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = parse_qs(urlsplit(self.path).query)
                outer.requests.append(query)
                status, kind, body = reply(query)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/translate_tts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def gtts_server(mp3_reply: bytes) -> Iterator[_Server]:
    with _Server(lambda _query: (200, "audio/mpeg", mp3_reply)) as server:
        yield server


def test_split_text_keeps_pieces_short_and_whole() -> None:
    text = "Kính thưa bà con, " * 12 + "một từ-rất-dài-" * 10
    pieces = split_text(text, 60)
    assert all(0 < len(p) <= 60 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_gtts_fetches_every_piece_and_joins_them(gtts_server: _Server, tmp_path: Path) -> None:
    engine = GttsEngine(gtts_server.url, max_chars=40)
    assert engine.available().ok
    out = tmp_path / "out.wav"
    engine.synthesize(TEXT, "vi", out)
    pieces = split_text(TEXT, 40)
    assert len(pieces) > 1
    assert [r["q"][0] for r in gtts_server.requests] == pieces
    assert {r["tl"][0] for r in gtts_server.requests} == {"vi"}
    assert [r["idx"][0] for r in gtts_server.requests] == [str(i) for i in range(len(pieces))]
    duration = probe(out).duration_s
    assert duration == pytest.approx(0.5 * len(pieces), abs=0.1 * len(pieces))


def test_gtts_through_the_cli(app: typer.Typer, gtts_server: _Server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BCAST_GTTS_URL", gtts_server.url)
    out = tmp_path / "out.mp3"
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào bà con", "-o", str(out), "--engine", "gtts"])
    assert result.exit_code == 0, result.output
    assert gtts_server.requests[0]["q"] == ["Xin chào bà con"]
    assert measure_loudness(out).integrated_lufs == pytest.approx(-16.0, abs=1.0)


def test_gtts_error_page_is_a_tts_error(tmp_path: Path) -> None:
    with _Server(lambda _q: (200, "text/html", b"<html>captcha</html>")) as server:
        with pytest.raises(TtsError, match="returned no audio"):
            GttsEngine(server.url).synthesize("Xin chào", "vi", tmp_path / "out.wav")
    with _Server(lambda _q: (429, "text/plain", b"slow down")) as server:
        with pytest.raises(TtsError, match="HTTP 429"):
            GttsEngine(server.url).synthesize("Xin chào", "vi", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_gtts_is_off_unless_configured_and_unreachable_is_unavailable() -> None:
    off = get_engine("gtts").available()
    assert not off.ok and "BCAST_GTTS_URL is not set" in off.reason
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        closed = GttsEngine(f"http://127.0.0.1:{port}/translate_tts").available()
    assert not closed.ok and "cannot connect" in closed.reason
    assert not GttsEngine("ftp://example.invalid/tts").available().ok


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    ("engine", "detail"),
    [("piper", "BCAST_PIPER_MODEL"), ("viettts", "BCAST_VIETTTS_DIR"), ("gtts", "BCAST_GTTS_URL")],
)
def test_say_with_unconfigured_engine_exits_2_in_vietnamese(
    app: typer.Typer, engine: str, detail: str, tmp_path: Path
) -> None:
    out = tmp_path / "x.mp3"
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào", "-o", str(out), "--engine", engine])
    assert result.exit_code == 2
    assert "Bộ tổng hợp giọng nói chưa sẵn sàng trên máy này" in result.stderr
    assert "Cách khắc phục:" in result.stderr and detail in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_engine_from_environment_is_used_by_say(app: typer.Typer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BCAST_TTS_ENGINE", "piper")
    monkeypatch.setenv("BCAST_PIPER_MODEL", str(tmp_path / "missing.onnx"))
    result = CliRunner().invoke(app, ["tts", "say", "Xin chào", "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code == 2
    assert "missing.onnx does not exist" in result.stderr


def test_engines_command_lists_availability(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["tts", "engines"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("espeak-ng (mặc định): sẵn sàng") for line in lines)
    assert any(line.startswith("piper: chưa dùng được") for line in lines)
    assert any(line.startswith("gtts: chưa dùng được") for line in lines)
