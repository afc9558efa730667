"""Online engine speaking the gTTS protocol (Google Translate's `translate_tts` GET API and compatible servers).

Off unless configured: the text of a bulletin leaves the machine, so an operator must choose a server.

Configuration (environment):
- `BCAST_GTTS_URL`: the endpoint, e.g. `https://translate.google.com/translate_tts`; required.
- `BCAST_GTTS_LANG`: language code sent as `tl` (default `vi`).
- `BCAST_GTTS_TIMEOUT`: seconds per request (default 20).
- `BCAST_GTTS_MAX_CHARS`: longest text sent in one request (default 100, as gTTS does).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audio.tts._wav import join_to_wav, tempo_for
from audio.tts.engine import Availability, EngineUnavailable, TtsError, check_text, check_wav, require_available

DEFAULT_VOICE = "vi"
_HINT_CONFIG = (
    "Bộ đọc trực tuyến đang tắt: đặt BCAST_GTTS_URL (ví dụ https://translate.google.com/translate_tts) "
    "để bật, hoặc dùng bộ đọc espeak-ng ngoại tuyến."
)
_HINT_NETWORK = (
    "Máy không kết nối được máy chủ đọc trực tuyến: kiểm tra mạng và BCAST_GTTS_URL, "
    "hoặc dùng bộ đọc espeak-ng ngoại tuyến."
)
_AUDIO_MAGIC = (b"ID3", b"RIFF", b"OggS", b"fLaC")
_SENTENCE_END = re.compile(r"(?<=[.!?;:,…])\s+")


def looks_like_audio(body: bytes) -> bool:
    """True for an ID3 tag, an MPEG audio frame sync, or a WAV/Ogg/FLAC header."""
    mpeg_sync = len(body) > 1 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0
    return mpeg_sync or body.startswith(_AUDIO_MAGIC)


def split_text(text: str, max_chars: int) -> list[str]:
    """Split `text` into pieces of at most `max_chars`, at punctuation, else at spaces, else hard."""
    pieces: list[str] = []
    for clause in _SENTENCE_END.split(" ".join(text.split())):
        current = ""
        for word in clause.split(" "):
            while len(word) > max_chars:
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:max_chars])
                word = word[max_chars:]
            candidate = f"{current} {word}".strip()
            if len(candidate) > max_chars:
                pieces.append(current)
                current = word
            else:
                current = candidate
        if current:
            pieces.append(current)
    # Join short neighbours back together so that fewer requests are made.
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + 1 + len(piece) <= max_chars:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return [p for p in merged if p.strip()]


class GttsEngine:
    """Fetch MP3 speech over HTTP(S), one request per text piece, and join the pieces into one WAV."""

    name = "gtts"
    default_voice = DEFAULT_VOICE

    def __init__(
        self,
        url: str | None = None,
        *,
        lang: str | None = None,
        timeout_s: float | None = None,
        max_chars: int | None = None,
    ) -> None:
        self._url = (url or os.environ.get("BCAST_GTTS_URL") or "").strip()
        self._lang = lang or os.environ.get("BCAST_GTTS_LANG") or "vi"
        try:
            self._timeout_s = float(timeout_s or os.environ.get("BCAST_GTTS_TIMEOUT") or 20)
            self._max_chars = int(max_chars or os.environ.get("BCAST_GTTS_MAX_CHARS") or 100)
        except ValueError as exc:
            raise TtsError(f"BCAST_GTTS_TIMEOUT / BCAST_GTTS_MAX_CHARS must be numbers: {exc}") from exc
        if self._max_chars < 20:
            raise TtsError(f"BCAST_GTTS_MAX_CHARS must be at least 20, got {self._max_chars}")

    def _endpoint(self) -> tuple[str, int]:
        if not self._url:
            raise EngineUnavailable(
                "BCAST_GTTS_URL is not set (the online engine is off until configured)", _HINT_CONFIG
            )
        parts = urlsplit(self._url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineUnavailable(f"BCAST_GTTS_URL must be an http(s) URL, got {self._url!r}", _HINT_CONFIG)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EngineUnavailable(f"BCAST_GTTS_URL has a bad port: {exc}", _HINT_CONFIG) from exc
        return parts.hostname, port

    def available(self) -> Availability:
        try:
            host, port = self._endpoint()
        except EngineUnavailable as exc:
            return Availability(False, str(exc), exc.hint)
        # A TCP connection proves name resolution and a route without sending any text.
        try:
            with socket.create_connection((host, port), timeout=min(self._timeout_s, 5.0)):
                pass
        except OSError as exc:
            return Availability(False, f"cannot connect to {host}:{port} ({exc})", _HINT_NETWORK)
        return Availability(True, f"{self._url} (language {self._lang})")

    def voices(self) -> Mapping[str, str]:
        return {DEFAULT_VOICE: f"giọng trực tuyến ({self._lang})"}

    def settings(self) -> dict[str, Any]:
        return {"url": self._url, "lang": self._lang}

    def synthesize(self, text: str, voice: str, out_wav: Path, *, rate_wpm: int | None = None) -> None:
        if voice not in self.voices():
            raise TtsError(f"unknown voice {voice!r} for {self.name}; known voices: {', '.join(self.voices())}")
        check_text(text)
        require_available(self)
        import httpx

        pieces = split_text(text, self._max_chars)
        out_wav = Path(out_wav)
        with (
            tempfile.TemporaryDirectory(prefix="bcast-gtts-") as work,
            httpx.Client(
                timeout=self._timeout_s, follow_redirects=True, headers={"User-Agent": "bcast-tts/1"}
            ) as client,
        ):
            parts: list[Path] = []
            for idx, piece in enumerate(pieces):
                params = {
                    "ie": "UTF-8", "q": piece, "tl": self._lang, "client": "tw-ob", "ttsspeed": "1",
                    "total": str(len(pieces)), "idx": str(idx), "textlen": str(len(piece)),
                }  # fmt: skip
                try:
                    response = client.get(self._url, params=params)
                except httpx.HTTPError as exc:
                    raise EngineUnavailable(f"request to {self._url} failed: {exc}", _HINT_NETWORK) from exc
                if response.status_code != 200:
                    raise TtsError(f"{self._url} answered HTTP {response.status_code} for piece {idx + 1}")
                body = response.content
                if not looks_like_audio(body):
                    kind = response.headers.get("content-type", "?")
                    raise TtsError(f"{self._url} returned no audio for piece {idx + 1} (content-type {kind})")
                part = Path(work) / f"{idx:04d}.audio"
                part.write_bytes(body)
                parts.append(part)
            join_to_wav(parts, out_wav, tempo=tempo_for(rate_wpm))
        check_wav(out_wav, self.name, voice)
