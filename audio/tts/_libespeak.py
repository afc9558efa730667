"""libespeak-ng through ctypes, from the `espeakng-loader` wheel (library and data, Vietnamese included).

Used when the `espeak-ng` binary is missing, so that a pip-only install still speaks. The library keeps
global state, so one process-wide instance is initialised once and every call holds a lock.
"""

from __future__ import annotations

import ctypes
import threading
import wave
from pathlib import Path

from audio.tts.engine import EngineUnavailable, TtsError

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_EE_OK = 0
_PARAM_RATE = 1

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_instance: _LibEspeak | None = None


class _LibEspeak:
    """An initialised libespeak-ng that renders text to 16-bit mono samples."""

    def __init__(self, library: str, data_dir: str) -> None:
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            raise EngineUnavailable(f"cannot load {library}: {exc}") from exc
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        # `path` is the directory holding espeak-ng-data (or that directory itself).
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir.encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EngineUnavailable(f"libespeak-ng failed to initialise with data at {data_dir}")
        self._lib = lib
        self.sample_rate = rate
        self.version = (lib.espeak_Info(None) or b"?").decode("ascii", "replace")
        self._chunks: list[bytes] = []
        # Keep a reference: ctypes callbacks must outlive every call into the library.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def synthesize(self, text: str, voice: str, out_wav: Path, rate_wpm: int | None) -> None:
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise TtsError(f"libespeak-ng has no voice {voice!r}")
        # 175 wpm is espeak-ng's default; set it explicitly so a previous call's rate does not leak.
        lib.espeak_SetParameter(_PARAM_RATE, rate_wpm or 175, 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        lib.espeak_Synchronize()
        if status != _EE_OK:
            raise TtsError(f"libespeak-ng espeak_Synth failed with status {status}")
        pcm = b"".join(self._chunks)
        self._chunks = []
        if not pcm:
            raise TtsError(f"libespeak-ng produced no audio for voice {voice!r}")
        with wave.open(str(out_wav), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(pcm)


def locate() -> tuple[str, str]:
    """Return (library path, data directory) from the `espeakng-loader` wheel; raise `EngineUnavailable`."""
    try:
        import espeakng_loader
    except ImportError as exc:
        raise EngineUnavailable(
            "the espeakng-loader package is not installed (pip install espeakng-loader)",
            "Cài gói espeak-ng (apt) hoặc gói Python espeakng-loader.",
        ) from exc
    library = espeakng_loader.get_library_path()
    try:
        data_dir = espeakng_loader.get_data_path()
    except RuntimeError as exc:
        raise EngineUnavailable(f"espeakng-loader ships no voice data: {exc}") from exc
    if not Path(library).is_file():
        raise EngineUnavailable(f"espeakng-loader library {library} is missing")
    if not (Path(data_dir) / "vi_dict").is_file():
        raise EngineUnavailable(f"espeakng-loader data at {data_dir} has no Vietnamese dictionary (vi_dict)")
    return library, data_dir


def library_version() -> str:
    """Version of the loaded library (loading it if needed)."""
    with _lock:
        return _get().version


def synthesize(text: str, voice: str, out_wav: Path, rate_wpm: int | None) -> None:
    """Speak `text` with the wheel's libespeak-ng into a 16-bit mono WAV."""
    with _lock:
        _get().synthesize(text, voice, out_wav, rate_wpm)


def _get() -> _LibEspeak:
    global _instance
    if _instance is None:
        library, data_dir = locate()
        _instance = _LibEspeak(library, data_dir)
    return _instance
