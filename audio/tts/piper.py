"""Piper engine: a local `.onnx` voice file, run by the piper-tts Python package or the `piper` binary.

Configuration (environment):
- `BCAST_PIPER_MODEL`: path to the voice model (`*.onnx`); required, nothing is ever downloaded.
- `BCAST_PIPER_CONFIG`: its JSON config (default: the model path plus `.json`).
- `BCAST_PIPER_BACKEND`: `auto` (Python package if importable, else binary), `python` or `binary`.
- `BCAST_PIPER_BINARY`: the piper command (default `piper`).
- `BCAST_PIPER_SPEAKER`: speaker name or id for multi-speaker models (default: the model's default).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audio.tts._wav import NORMAL_RATE_WPM
from audio.tts.engine import Availability, EngineUnavailable, TtsError, check_text, check_wav, require_available

BACKENDS = ("auto", "python", "binary")
DEFAULT_VOICE = "default"
_HINT = (
    "Đặt biến môi trường BCAST_PIPER_MODEL trỏ tới tệp giọng piper (.onnx, kèm tệp .onnx.json) có sẵn trên máy, "
    "và cài gói piper-tts (pip install piper-tts) hoặc chương trình piper."
)

# Loaded voices, keyed by (model, config, model mtime): loading a model takes far longer than a sentence.
_voices: dict[tuple[str, str, int], Any] = {}
_voices_lock = threading.Lock()


class PiperEngine:
    """Synthesize with a piper VITS voice model stored on this machine."""

    name = "piper"
    default_voice = DEFAULT_VOICE

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        config: str | Path | None = None,
        backend: str | None = None,
        binary: str | None = None,
        speaker: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        model = model or os.environ.get("BCAST_PIPER_MODEL") or None
        self._model = Path(model).expanduser() if model else None
        config = config or os.environ.get("BCAST_PIPER_CONFIG") or None
        if config:
            self._config: Path | None = Path(config).expanduser()
        else:
            self._config = Path(f"{self._model}.json") if self._model else None
        self._backend = (backend or os.environ.get("BCAST_PIPER_BACKEND") or "auto").strip().lower()
        self._binary = binary or os.environ.get("BCAST_PIPER_BINARY") or "piper"
        self._speaker = speaker or os.environ.get("BCAST_PIPER_SPEAKER") or None
        self._timeout_s = timeout_s

    # -- configuration ----------------------------------------------------------------------------------

    def _read_config(self) -> dict[str, Any]:
        """The model's JSON config; raise `EngineUnavailable` if the model or config is missing or broken."""
        if self._backend not in BACKENDS:
            raise EngineUnavailable(
                f"BCAST_PIPER_BACKEND must be one of {', '.join(BACKENDS)}, got {self._backend!r}", _HINT
            )
        if self._model is None:
            raise EngineUnavailable("BCAST_PIPER_MODEL is not set (path to a piper .onnx voice file)", _HINT)
        if not self._model.is_file():
            raise EngineUnavailable(f"piper voice model {self._model} does not exist", _HINT)
        assert self._config is not None
        if not self._config.is_file():
            raise EngineUnavailable(f"piper voice config {self._config} does not exist", _HINT)
        try:
            data = json.loads(self._config.read_text(encoding="utf-8"))
            int(data["audio"]["sample_rate"])
            data["phoneme_id_map"].items()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EngineUnavailable(f"piper voice config {self._config} is not a valid piper config: {exc}") from exc
        return data

    def _speakers(self, data: dict[str, Any]) -> dict[str, int]:
        speakers = data.get("speaker_id_map") or {}
        return {str(name): int(sid) for name, sid in speakers.items()} if isinstance(speakers, dict) else {}

    def _run_backend(self) -> str:
        """ "python" or "binary", whichever can run now; raise `EngineUnavailable` otherwise."""
        reasons = []
        if self._backend in ("auto", "python"):
            try:
                from piper import PiperVoice  # noqa: F401
            except ImportError as exc:
                reasons.append(f"the piper-tts Python package is not importable ({exc})")
            else:
                return "python"
        if self._backend in ("auto", "binary"):
            if shutil.which(self._binary):
                return "binary"
            reasons.append(f"{self._binary} binary not found on PATH")
        raise EngineUnavailable("; ".join(reasons), _HINT)

    # -- engine interface -------------------------------------------------------------------------------

    def available(self) -> Availability:
        try:
            data = self._read_config()
            backend = self._run_backend()
        except EngineUnavailable as exc:
            return Availability(False, str(exc), exc.hint)
        language = (data.get("espeak") or {}).get("voice") or (data.get("language") or {}).get("code") or "?"
        return Availability(True, f"{self._model} (language {language}) via piper {backend}")

    def voices(self) -> Mapping[str, str]:
        try:
            data = self._read_config()
        except EngineUnavailable:
            return {}
        voices = {DEFAULT_VOICE: "giọng mặc định của mô hình", "vi": "giọng mặc định của mô hình"}
        voices.update({name: f"người đọc số {sid}" for name, sid in self._speakers(data).items()})
        return voices

    def settings(self) -> dict[str, Any]:
        self._read_config()
        assert self._model is not None and self._config is not None
        stat = self._model.stat()
        return {
            "model": str(self._model.resolve()),
            "model_size": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns,
            "config_sha256": hashlib.sha256(self._config.read_bytes()).hexdigest(),
            "speaker": self._speaker,
        }

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        check_text(text)
        require_available(self)
        data = self._read_config()
        speaker_id = self._speaker_id(data, voice)
        length_scale = None
        if rate_wpm is not None:
            if not 40 <= rate_wpm <= 500:
                raise TtsError(f"rate_wpm must be between 40 and 500, got {rate_wpm}")
            length_scale = NORMAL_RATE_WPM / rate_wpm
        out_wav = Path(out_wav)
        if self._run_backend() == "python":
            self._synthesize_python(text, out_wav, speaker_id, length_scale)
        else:
            self._synthesize_binary(text, out_wav, speaker_id, length_scale)
        check_wav(out_wav, self.name, voice)

    def _speaker_id(self, data: dict[str, Any], voice: str) -> int | None:
        speakers = self._speakers(data)
        chosen = self._speaker if voice in (DEFAULT_VOICE, "vi") else voice
        if chosen is None:
            return None
        if chosen in speakers:
            return speakers[chosen]
        if chosen.isdigit() and int(chosen) < max(1, int(data.get("num_speakers") or 1)):
            return int(chosen)
        known = ", ".join([DEFAULT_VOICE, *speakers]) or DEFAULT_VOICE
        raise TtsError(f"unknown voice {chosen!r} for {self.name} model {self._model}; known voices: {known}")

    def _synthesize_python(self, text: str, out_wav: Path, speaker_id: int | None, length_scale: float | None) -> None:
        from piper import PiperVoice, SynthesisConfig

        assert self._model is not None and self._config is not None
        key = (str(self._model.resolve()), str(self._config.resolve()), self._model.stat().st_mtime_ns)
        with _voices_lock:
            voice = _voices.get(key)
            if voice is None:
                try:
                    voice = PiperVoice.load(self._model, config_path=self._config)
                except Exception as exc:  # onnxruntime raises its own classes for a broken model
                    raise TtsError(f"piper cannot load {self._model}: {exc}") from exc
                _voices[key] = voice
        syn = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
        try:
            with wave.open(str(out_wav), "wb") as wav:
                voice.synthesize_wav(text, wav, syn_config=syn)
        except (wave.Error, TtsError):
            raise
        except Exception as exc:  # onnxruntime / phonemizer errors
            raise TtsError(f"piper failed: {exc}") from exc

    def _synthesize_binary(self, text: str, out_wav: Path, speaker_id: int | None, length_scale: float | None) -> None:
        assert self._model is not None and self._config is not None
        # Text goes through stdin on one line: both the C++ piper and piper-tts read it from there.
        args = [self._binary, "--model", str(self._model), "--config", str(self._config), "--output_file", str(out_wav)]
        if speaker_id is not None:
            args += ["--speaker", str(speaker_id)]
        if length_scale is not None:
            args += ["--length_scale", f"{length_scale:.4f}"]
        line = " ".join(text.split()) + "\n"
        try:
            proc = subprocess.run(
                args, input=line.encode("utf-8"), capture_output=True, timeout=self._timeout_s, check=False
            )
        except FileNotFoundError as exc:
            raise EngineUnavailable(f"{self._binary} binary not found", _HINT) from exc
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"{self._binary} did not finish within {self._timeout_s:.0f} s") from exc
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip()[-500:] or "no error output"
            raise TtsError(f"{self._binary} failed (exit {proc.returncode}): {detail}")
