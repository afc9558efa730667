"""eSpeak NG engine: runs the `espeak-ng` binary (Debian package `espeak-ng`).

Only the binary is used. Loading libespeak-ng through the `espeakng-loader` wheel (for machines without
the Debian package) is a later step and is deliberately not implemented here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import MappingProxyType

from audio.tts.engine import Availability, EngineUnavailable, TtsError

# eSpeak NG voice id -> region (user-facing label).
VOICES = MappingProxyType(
    {
        "vi": "Bắc",
        "vi-vn-x-central": "Trung",
        "vi-vn-x-south": "Nam",
    }
)

MIN_RATE_WPM = 80
MAX_RATE_WPM = 450


class EspeakEngine:
    """Synthesize Vietnamese speech with the `espeak-ng` command (text goes through stdin as UTF-8)."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng", *, timeout_s: float = 120.0) -> None:
        self._binary = binary
        self._timeout_s = timeout_s

    def available(self) -> Availability:
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
        if not text.strip():
            raise TtsError("nothing to say: the text is empty")
        state = self.available()
        if not state.ok:
            raise EngineUnavailable(state.reason)

        out_wav = Path(out_wav)
        # -b 1: input is UTF-8; --stdin: the text never reaches the argument list, so it cannot be an option.
        args = [self._binary, "-v", voice, "-b", "1", "-w", str(out_wav), "--stdin"]
        if rate_wpm is not None:
            args[1:1] = ["-s", str(rate_wpm)]
        try:
            proc = subprocess.run(
                args, input=text.encode("utf-8"), capture_output=True, timeout=self._timeout_s, check=False
            )
        except FileNotFoundError as exc:
            raise EngineUnavailable(f"{self._binary} binary not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"{self._binary} did not finish within {self._timeout_s:.0f} s") from exc
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip() or "no error output"
            raise TtsError(f"{self._binary} failed (exit {proc.returncode}): {detail}")
        if not out_wav.is_file() or out_wav.stat().st_size <= 44:
            raise TtsError(f"{self._binary} produced no audio for voice {voice!r}")
