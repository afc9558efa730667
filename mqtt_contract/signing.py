"""Ed25519 signatures of commands: the canonical bytes, signing, verifying, key ids and sequence numbers.

A command's signature covers its canonical form: the command without its ``sig`` member, serialised with
keys sorted, no whitespace, UTF-8, numbers normalised (see ``canonical_bytes``). Server and agent both
compute it from the parsed JSON, so how the payload was spaced or ordered on the wire does not matter.

Verifying (the agent) uses PyNaCl (libsodium); signing and key objects (the server, the simulator, the
benchmarks) use `cryptography`, imported only by the functions that sign. Both are standard Ed25519 (RFC
8032): an agent process does not map cryptography's own OpenSSL, about 9 MB of its 40 MB budget (issue 9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
# How an agent without a trusted key starts its heartbeat's last_error and its refusals' reasons; the
# server's fleet view looks for it to list the clusters that refuse every command (not enrolled).
NO_TRUSTED_KEY = "no trusted server key"
_MAX_SAFE_INTEGER = 2**53


class CommandAuthError(ValueError):
    """A command that does not prove it comes from the server; ``reason`` says why, for the agent's report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsignedCommand(CommandAuthError):
    """The command has no signature."""


class UnknownKey(CommandAuthError):
    """The command is signed with a key the verifier does not trust."""


class BadSignature(CommandAuthError):
    """The signature does not match the command (tampered, or not a signature at all)."""


class InvalidKey(ValueError):
    """A public or private key in text form that is not a 32-byte Ed25519 key in base64url."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url; raises ValueError for anything else (strict alphabet)."""
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None


def _normalised(value: Any) -> Any:
    """Integral floats become integers (as in RFC 8785: 10.0 is written 10); NaN and infinities are refused."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinities have no canonical form")
        if value.is_integer() and abs(value) < _MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def canonical_bytes(command: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the command without ``sig``, keys sorted, no whitespace, UTF-8.

    Close to RFC 8785 (JCS) for the values commands carry: ASCII keys (so code-point and UTF-16 order
    agree), strings escaped as JSON requires and no more, integral numbers without a fraction. Non-integral
    floats use Python's shortest round-trip form, which differs from JCS only in exponent notation.
    Raises ValueError for what has no canonical form (NaN, lone surrogates)."""
    body = {k: v for k, v in command.items() if k != "sig"}
    text = json.dumps(_normalised(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """A public key as the configuration and ``keys`` commands carry it: 32 raw bytes in base64url."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def key_id(public_key: str) -> str:
    """The id of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _raw_public(public_key: str) -> bytes:
    try:
        raw = unb64url(public_key.strip())
    except (ValueError, AttributeError):
        raise InvalidKey(f"public key {public_key!r} is not base64url") from None
    if len(raw) != 32:
        raise InvalidKey(f"public key {public_key!r} is not 32 bytes")
    return raw


@lru_cache(maxsize=64)
def load_public_key(public_key: str) -> VerifyKey:
    """Parse a public key in text form (cached: a simulated fleet shares one object per key)."""
    return VerifyKey(_raw_public(public_key))


def trust(public_keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The trusted keys as ``verify`` takes them: key id -> public key text; raises InvalidKey."""
    return {key_id(k): k.strip() for k in public_keys}


def sign(command: dict[str, Any], private_key: Ed25519PrivateKey, kid: str | None = None) -> dict[str, Any]:
    """A copy of the command with ``sig``: {"alg": "Ed25519", "kid": ..., "value": base64url}."""
    kid = kid or key_id(public_key_text(private_key))
    value = private_key.sign(canonical_bytes(command))
    return {**command, "sig": {"alg": ALGORITHM, "kid": kid, "value": b64url(value)}}


def verify(command: dict[str, Any], trusted: dict[str, str]) -> str:
    """Check the command's signature against the trusted keys (key id -> public key); return the key id.

    Raises UnsignedCommand, UnknownKey or BadSignature; never another error for any command given."""
    sig = command.get("sig")
    if sig is None:
        raise UnsignedCommand("signature: missing (unsigned command)")
    if not isinstance(sig, dict) or sig.get("alg") != ALGORITHM:
        raise BadSignature("signature: not an Ed25519 signature")
    kid = sig.get("kid")
    if not isinstance(kid, str) or kid not in trusted:
        raise UnknownKey(f"signature: unknown key id {str(kid)[:64]!r}")
    try:
        value = unb64url(sig.get("value", ""))
        load_public_key(trusted[kid]).verify(canonical_bytes(command), value)
    except (BadSignatureError, ValueError, TypeError, UnicodeEncodeError):
        raise BadSignature(f"signature: does not match the command (key id {kid!r})") from None
    return kid


class SequenceClock:
    """Sequence numbers for commands: microseconds since the epoch, strictly increasing in this process.

    No coordination between server replicas is needed: each takes the time; two replicas would have to
    sign for the same cluster within the same microsecond to collide, and then the agent refuses one."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


class CommandSigner:
    """Signs commands with one private key, giving each a fresh ``seq``."""

    def __init__(self, private_key: Ed25519PrivateKey, *, sequence: SequenceClock | None = None) -> None:
        self.private_key = private_key
        self.public_key = public_key_text(private_key)
        self.kid = key_id(self.public_key)
        self.sequence = sequence or SequenceClock()

    @classmethod
    def generate(cls) -> CommandSigner:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    def sign(self, command: dict[str, Any]) -> dict[str, Any]:
        """A copy of the command with a new ``seq`` and the signature over both."""
        return sign({**command, "seq": self.sequence.next()}, self.private_key, self.kid)
