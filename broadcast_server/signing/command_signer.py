"""The signer every command goes through on its way out (``MqttBus.publish_commands``).

It puts a download token on each audio URL of the command, gives it a fresh ``seq`` and signs it with the
active key of the key file. The file is read again when it changes, so ``bcast keys rotate switch`` takes
effect in a running server (and in every replica reading the same file) without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broadcast_server.signing.audio_tokens import GRACE_S, authorised_url
from broadcast_server.signing.keyring import Keyring, KeyringError, load_keyring, load_or_create_keyring
from mqtt_contract.signing import SequenceClock, sign
from mqtt_contract.times import parse_time

log = logging.getLogger(__name__)


class ServerCommandSigner:
    """Signs commands with the active key of the key file at ``path`` (made there when missing)."""

    def __init__(self, path: Path, *, sequence: SequenceClock | None = None) -> None:
        self.path = Path(path)
        self.sequence = sequence or SequenceClock()
        self._lock = threading.Lock()
        self._keyring = load_or_create_keyring(self.path)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    @property
    def keyring(self) -> Keyring:
        """The key file as it is now; a damaged or vanished file keeps the keys last read (and logs it)."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                try:
                    self._keyring = load_keyring(self.path)
                    log.info("signing keys re-read from %s: active key %s", self.path, self._keyring.active.kid)
                except KeyringError as exc:
                    log.error("signing keys not re-read, keeping key %s: %s", self._keyring.active.kid, exc)
                self._stamp = stamp
        return self._keyring

    def sign(self, command: dict[str, Any], keyring: Keyring | None = None) -> dict[str, Any]:
        """A copy of the command with authorised audio URLs, a new ``seq`` and the signature.

        A caller signing a batch passes ``keyring`` read once for it: a stat of the key file per command
        cost a province-wide dispatch about half a second (bench/fanout.py, 10,000 commands)."""
        keyring = keyring or self.keyring
        expires = int(parse_time(command["expires_at"]).timestamp()) + GRACE_S
        authorised = with_audio_tokens(command, keyring.audio_token_secret, expires)
        authorised["seq"] = self.sequence.next()
        active = keyring.active
        return sign(authorised, active.private_key, active.kid)


def with_audio_tokens(command: dict[str, Any], secret: bytes, expires: int) -> dict[str, Any]:
    """A copy of the command whose audio URLs (play, schedule items) carry a token valid until ``expires``.

    Copies only along the audio paths: the caller's dicts (shared between clusters) stay untouched."""

    urls: dict[tuple[str, str], str] = {}  # a window repeats the same few files many times

    def authorised(audio: dict[str, Any]) -> dict[str, Any]:
        key = (audio["url"], audio["sha256"])
        if key not in urls:
            urls[key] = authorised_url(audio["url"], audio["sha256"], expires, secret)
        return {**audio, "url": urls[key]}

    result = dict(command)
    if isinstance(command.get("play"), dict):
        result["play"] = _with_token(command["play"], authorised)
    if isinstance(command.get("schedule"), dict):
        window = command["schedule"]
        result["schedule"] = {
            **window,
            "entries": [
                {**entry, "items": [_with_token(item, authorised) for item in entry["items"]]}
                for entry in window["entries"]
            ],
        }
    return result


def _with_token(holder: dict[str, Any], authorised: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """A play or schedule item with its audio URL authorised; a live relay's stream (not ours) as it is."""
    return {**holder, "audio": authorised(holder["audio"])} if "audio" in holder else holder
