"""eSpeak NG engine: the `espeak-ng` binary (Debian package), or libespeak-ng from the `espeakng-loader` wheel.

Configuration (environment): `BCAST_ESPEAK_BINARY` (default `espeak-ng`) and `BCAST_ESPEAK_BACKEND`:
`auto` (binary if found, else the wheel's library), `binary` or `library`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from audio.tts import _libespeak
from audio.tts.engine import (
    Availability,
    EngineUnavailable,
    TtsError,
    check_text,
    check_wav,
    require_available,
)

# eSpeak NG voice id -> how users see it (all three of Debian's Vietnamese voices are male).
VOICES = MappingProxyType(
    {
        "vi": "giọng nam miền Bắc",
        "vi-vn-x-central": "giọng nam miền Trung",
        "vi-vn-x-south": "giọng nam miền Nam",
    }
)

MIN_RATE_WPM = 80
MAX_RATE_WPM = 450
BACKENDS = ("auto", "binary", "library")

_HINT = "Cài gói espeak-ng (apt install espeak-ng) hoặc gói Python espeakng-loader (pip install espeakng-loader)."


class EspeakEngine:
    """Synthesize Vietnamese speech with eSpeak NG (text goes through stdin or the C API as UTF-8)."""

    name = "espeak-ng"
    default_voice = "vi"

    def __init__(self, binary: str | None = None, *, backend: str | None = None, timeout_s: float = 120.0) -> None:
        self._binary = binary or os.environ.get("BCAST_ESPEAK_BINARY") or "espeak-ng"
        self._backend = (backend or os.environ.get("BCAST_ESPEAK_BACKEND") or "auto").strip().lower()
        if self._backend not in BACKENDS:
            raise TtsError(f"BCAST_ESPEAK_BACKEND must be one of {', '.join(BACKENDS)}, got {self._backend!r}")
        self._timeout_s = timeout_s
        self._binary_checked: Availability | None = None

    def voices(self) -> Mapping[str, str]:
        return VOICES

    def backend(self) -> str:
        """The backend that would run now: "binary" or "library"; raise `EngineUnavailable` if neither can."""
        reasons: list[str] = []
        if self._backend in ("auto", "binary"):
            state = self._binary_state()
            if state.ok:
                return "binary"
            reasons.append(state.reason)
        if self._backend in ("auto", "library"):
            try:
                _libespeak.locate()
                return "library"
            except EngineUnavailable as exc:
                reasons.append(f"libespeak-ng fallback: {exc}")
        raise EngineUnavailable("; ".join(reasons), _HINT)

    def available(self) -> Availability:
        try:
            backend = self.backend()
        except EngineUnavailable as exc:
            return Availability(False, str(exc), exc.hint)
        if backend == "binary":
            return self._binary_state()
        try:
            return Availability(True, f"libespeak-ng {_libespeak.library_version()} from espeakng-loader")
        except EngineUnavailable as exc:
            return Availability(False, str(exc), _HINT)

    def settings(self) -> dict[str, Any]:
        # Binary and library may be different eSpeak NG releases with different audio.
        backend = self.backend()
        version = self._binary_state().reason if backend == "binary" else _libespeak.library_version()
        return {"backend": backend, "version": version}

    def _binary_state(self) -> Availability:
        """Whether the binary runs (checked once per engine instance)."""
        if self._binary_checked is None:
            self._binary_checked = self._check_binary()
        return self._binary_checked

    def _check_binary(self) -> Availability:
        path = shutil.which(self._binary)
        if path is None:
            return Availability(False, f"{self._binary} binary not found on PATH (install the espeak-ng package)")
        try:
            proc = subprocess.run(
                [path, "--version"], capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Availability(False, f"{path} cannot run: {exc}")
        if proc.returncode != 0:
            return Availability(False, f"{path} --version exited with {proc.returncode}")
        return Availability(True, f"{path} ({proc.stdout.decode('utf-8', 'replace').strip()})")

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        if voice not in VOICES:
            known = ", ".join(f"{v} ({region})" for v, region in VOICES.items())
            raise TtsError(f"unknown voice {voice!r} for {self.name}; known voices: {known}")
        if rate_wpm is not None and not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
            raise TtsError(f"rate_wpm must be between {MIN_RATE_WPM} and {MAX_RATE_WPM}, got {rate_wpm}")
        check_text(text)
        require_available(self)
        out_wav = Path(out_wav)
        if self.backend() == "library":
            _libespeak.synthesize(text, voice, out_wav, rate_wpm)
        else:
            self._run_binary(text, voice, out_wav, rate_wpm)
        check_wav(out_wav, self.name, voice)

    def _run_binary(self, text: str, voice: str, out_wav: Path, rate_wpm: int | None) -> None:
        # -b 1: input is UTF-8; --stdin: the text never reaches the argument list, so it cannot be an option.
        args = [self._binary, "-v", voice, "-b", "1", "-w", str(out_wav), "--stdin"]
        if rate_wpm is not None:
            args[1:1] = ["-s", str(rate_wpm)]
        try:
            proc = subprocess.run(
                args, input=text.encode("utf-8"), capture_output=True, timeout=self._timeout_s, check=False
            )
        except FileNotFoundError as exc:
            raise EngineUnavailable(f"{self._binary} binary not found", _HINT) from exc
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"{self._binary} did not finish within {self._timeout_s:.0f} s") from exc
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip() or "no error output"
            raise TtsError(f"{self._binary} failed (exit {proc.returncode}): {detail}")
