"""vietTTS engine (NTT123/vietTTS: NAT acoustic model + HiFi-GAN, trained on InfoRe), run as a subprocess.

vietTTS is not on PyPI and its weights are not either: an operator checks it out, installs it into
some Python and puts the checkpoints under `assets/`. Nothing is downloaded here.

Configuration (environment):
- `BCAST_VIETTTS_DIR`: the checkout (holds `assets/infore/nat/*.pickle` and `assets/hifigan/config.json`).
- `BCAST_VIETTTS_PYTHON`: interpreter with vietTTS, jax, dm-haiku and soundfile (default: this one).
- `BCAST_VIETTTS_LEXICON`: lexicon file (default `assets/infore/lexicon.txt` in the checkout).
- `BCAST_VIETTTS_SILENCE`: seconds of pause at punctuation (default 0.2).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audio.tts._wav import join_to_wav, tempo_for
from audio.tts.engine import Availability, EngineUnavailable, TtsError, check_text, check_wav, require_available

DEFAULT_VOICE = "default"
# Paths inside the checkout that vietTTS.synthesizer opens (relative to its working directory).
CHECKPOINTS = (
    "assets/infore/nat/duration_latest_ckpt.pickle",
    "assets/infore/nat/acoustic_latest_ckpt.pickle",
    "assets/infore/nat/hk_hifi.pickle",
    "assets/hifigan/config.json",
)
MODULES = ("vietTTS.synthesizer", "jax", "haiku", "soundfile")
_HINT = (
    "Đặt BCAST_VIETTTS_DIR trỏ tới thư mục vietTTS đã có sẵn mô hình (assets/infore/nat) "
    "và BCAST_VIETTTS_PYTHON trỏ tới Python đã cài vietTTS."
)


class VietTtsEngine:
    """Synthesize with a local vietTTS checkout and its InfoRe checkpoints."""

    name = "viettts"
    default_voice = DEFAULT_VOICE

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        python: str | None = None,
        lexicon: str | Path | None = None,
        silence_s: float | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        directory = directory or os.environ.get("BCAST_VIETTTS_DIR") or None
        self._dir = Path(directory).expanduser() if directory else None
        self._python = python or os.environ.get("BCAST_VIETTTS_PYTHON") or sys.executable
        lexicon = lexicon or os.environ.get("BCAST_VIETTTS_LEXICON") or None
        if lexicon:
            self._lexicon: Path | None = Path(lexicon).expanduser()
        else:
            self._lexicon = self._dir / "assets/infore/lexicon.txt" if self._dir else None
        raw_silence = silence_s if silence_s is not None else os.environ.get("BCAST_VIETTTS_SILENCE", "0.2")
        try:
            self._silence_s = float(raw_silence)
        except ValueError as exc:
            raise TtsError(f"BCAST_VIETTTS_SILENCE must be a number of seconds, got {raw_silence!r}") from exc
        self._timeout_s = timeout_s
        self._checked: Availability | None = None

    def _check_files(self) -> None:
        if self._dir is None:
            raise EngineUnavailable("BCAST_VIETTTS_DIR is not set (path to a vietTTS checkout with its models)", _HINT)
        if not self._dir.is_dir():
            raise EngineUnavailable(f"vietTTS directory {self._dir} does not exist", _HINT)
        missing = [rel for rel in CHECKPOINTS if not (self._dir / rel).is_file()]
        if missing:
            raise EngineUnavailable(f"vietTTS model files missing under {self._dir}: {', '.join(missing)}", _HINT)
        assert self._lexicon is not None
        if not self._lexicon.is_file():
            raise EngineUnavailable(f"vietTTS lexicon {self._lexicon} does not exist", _HINT)

    def _check_python(self) -> None:
        """The interpreter must import vietTTS (from the checkout) and its dependencies."""
        probe = (
            "import importlib.util, sys\n"
            f"missing = [m for m in {MODULES!r} if importlib.util.find_spec(m.split('.')[0]) is None]\n"
            "print(','.join(missing)); sys.exit(1 if missing else 0)\n"
        )
        try:
            proc = subprocess.run(
                [self._python, "-c", probe],
                cwd=self._dir,
                capture_output=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailable(f"cannot run {self._python}: {exc}", _HINT) from exc
        if proc.returncode != 0:
            missing = proc.stdout.decode("utf-8", "replace").strip() or proc.stderr.decode("utf-8", "replace")[-300:]
            raise EngineUnavailable(f"{self._python} cannot import: {missing}", _HINT)

    def available(self) -> Availability:
        if self._checked is None:
            try:
                self._check_files()
                self._check_python()
            except EngineUnavailable as exc:
                self._checked = Availability(False, str(exc), exc.hint)
            else:
                self._checked = Availability(True, f"vietTTS at {self._dir} with {self._python}")
        return self._checked

    def voices(self) -> Mapping[str, str]:
        return {DEFAULT_VOICE: "InfoRe (giọng nữ miền Bắc)", "vi": "InfoRe (giọng nữ miền Bắc)"}

    def settings(self) -> dict[str, Any]:
        self._check_files()
        assert self._dir is not None and self._lexicon is not None
        stamps = {rel: (self._dir / rel).stat().st_mtime_ns for rel in CHECKPOINTS}
        return {
            "dir": str(self._dir.resolve()),
            "checkpoints": stamps,
            "lexicon_sha256": hashlib.sha256(self._lexicon.read_bytes()).hexdigest(),
            "silence_s": self._silence_s,
        }

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        if voice not in self.voices():
            raise TtsError(f"unknown voice {voice!r} for {self.name}; known voices: {', '.join(self.voices())}")
        check_text(text)
        require_available(self)
        assert self._dir is not None and self._lexicon is not None
        out_wav = Path(out_wav)
        with tempfile.TemporaryDirectory(prefix="bcast-viettts-") as work:
            raw = Path(work) / "raw.wav"
            # "--text=..." keeps text that starts with "-" from being read as an option.
            args = [
                self._python, "-m", "vietTTS.synthesizer",
                f"--text={text}", f"--output={raw}",
                f"--lexicon-file={self._lexicon.resolve()}", f"--silence-duration={self._silence_s}",
            ]  # fmt: skip
            try:
                proc = subprocess.run(
                    args, cwd=self._dir, capture_output=True, timeout=self._timeout_s, check=False,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
            except FileNotFoundError as exc:
                raise EngineUnavailable(f"{self._python} not found", _HINT) from exc
            except subprocess.TimeoutExpired as exc:
                raise TtsError(f"vietTTS did not finish within {self._timeout_s:.0f} s") from exc
            if proc.returncode != 0:
                detail = proc.stderr.decode("utf-8", "replace").strip()[-500:] or "no error output"
                raise TtsError(f"vietTTS failed (exit {proc.returncode}): {detail}")
            check_wav(raw, self.name, voice)
            # vietTTS writes float WAV at 16 kHz and has no rate control: convert, and apply the tempo here.
            join_to_wav([raw], out_wav, tempo=tempo_for(rate_wpm))
        check_wav(out_wav, self.name, voice)
