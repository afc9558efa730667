"""The server's signing keys and audio-token secret, in one JSON file (mode 0600), and the rotation steps.

A key is ``active`` (signs every command), ``next`` (trusted by agents, not signing yet) or ``previous``
(the key before the last switch, still trusted until retired). Agents trust every key in the file.
Rotation: ``add`` a next key and push the set -> ``switch`` signing to it -> ``retire`` the previous key
and push the set again (docs/security.md, "Signed commands").
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from mqtt_contract.signing import b64url, key_id, public_key_text, unb64url
from mqtt_contract.times import isoformat

log = logging.getLogger(__name__)

ACTIVE, NEXT, PREVIOUS = "active", "next", "previous"


class KeyringError(ValueError):
    """The key file is unreadable or a rotation step does not apply now; the message says why."""


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    state: str
    created_at: str

    # Cached: every command signed names its key (10,000 at once for a province-wide alert).
    @cached_property
    def public_key(self) -> str:
        return public_key_text(self.private_key)

    @cached_property
    def kid(self) -> str:
        return key_id(self.public_key)


@dataclass(frozen=True)
class Keyring:
    keys: tuple[SigningKey, ...]
    audio_token_secret: bytes = field(repr=False)

    @property
    def active(self) -> SigningKey:
        return next(k for k in self.keys if k.state == ACTIVE)

    @property
    def trusted_public_keys(self) -> list[str]:
        """What agents should trust: every key held, sorted by key id."""
        return [k.public_key for k in sorted(self.keys, key=lambda k: k.kid)]

    def with_next_key(self, now: datetime) -> Keyring:
        """Rotation step 1: a new key agents will trust before it signs."""
        if any(k.state == NEXT for k in self.keys):
            raise KeyringError("a next key exists already: switch to it first")
        if any(k.state == PREVIOUS for k in self.keys):
            raise KeyringError("the previous key is still trusted: retire it first")
        return replace(self, keys=(*self.keys, _new_key(NEXT, now)))

    def switched(self) -> Keyring:
        """Rotation step 2: the next key signs from now on; the old one stays trusted as previous."""
        if not any(k.state == NEXT for k in self.keys):
            raise KeyringError("no next key to switch to: add one first (bcast keys rotate add)")
        states = {ACTIVE: PREVIOUS, NEXT: ACTIVE}
        return replace(self, keys=tuple(replace(k, state=states.get(k.state, k.state)) for k in self.keys))

    def retired(self) -> Keyring:
        """Rotation step 3: forget the previous key; agents stop trusting it with the next push."""
        if not any(k.state == PREVIOUS for k in self.keys):
            raise KeyringError("no previous key to retire")
        return replace(self, keys=tuple(k for k in self.keys if k.state != PREVIOUS))


def _new_key(state: str, now: datetime) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate(), state, isoformat(now))


def generate_keyring(now: datetime | None = None) -> Keyring:
    return Keyring((_new_key(ACTIVE, now or datetime.now(UTC)),), secrets.token_bytes(32))


def load_keyring(path: Path) -> Keyring:
    """Read the key file; KeyringError if it is missing or damaged."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        keys = tuple(
            SigningKey(
                Ed25519PrivateKey.from_private_bytes(unb64url(entry["private_key"])),
                entry["state"],
                entry.get("created_at", ""),
            )
            for entry in document["keys"]
        )
        secret = unb64url(document["audio_token_secret"])
    except FileNotFoundError:
        raise KeyringError(f"{path} does not exist (bcast keys generate)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyringError(f"{path} is not a bcast key file: {exc}") from None
    if [k.state for k in keys].count(ACTIVE) != 1 or any(k.state not in (ACTIVE, NEXT, PREVIOUS) for k in keys):
        raise KeyringError(f"{path} must hold exactly one active key, and keys in states active, next, previous")
    if len(secret) < 32:
        raise KeyringError(f"{path}: audio_token_secret is shorter than 32 bytes")
    return Keyring(keys, secret)


def save_keyring(path: Path, keyring: Keyring, *, exclusive: bool = False) -> None:
    """Write the key file atomically with mode 0600; with ``exclusive``, fail (FileExistsError) if it exists."""
    document = {
        "format": "bcast-signing-keys/1",
        "audio_token_secret": b64url(keyring.audio_token_secret),
        "keys": [
            {
                "kid": k.kid,
                "state": k.state,
                "created_at": k.created_at,
                "public_key": k.public_key,
                "private_key": b64url(k.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())),
            }
            for k in keyring.keys
        ],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process made the file first
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_keyring(path: Path) -> Keyring:
    """The key file, made at first start when missing (one line in the log says where)."""
    try:
        return load_keyring(path)
    except KeyringError:
        if Path(path).exists():
            raise
    keyring = generate_keyring()
    try:
        save_keyring(path, keyring, exclusive=True)
    except FileExistsError:  # another replica or process made it meanwhile
        return load_keyring(path)
    log.warning(
        "made a new command signing key %s in %s; give agents its public key (bcast keys show-public)",
        keyring.active.kid,
        path,
    )
    return keyring
