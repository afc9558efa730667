"""Mosquitto's password hash (``$7$``: PBKDF2-HMAC-SHA512, as mosquitto 2 and ``mosquitto_passwd`` write it).

Pure: no I/O. A line of the password file is ``username:$7$<iterations>$<salt base64>$<hash base64>``
with a 12-byte salt and a 64-byte derived key, both in standard base64 with padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "$7$"
SALT_BYTES = 12  # what mosquitto_passwd uses
KEY_BYTES = 64  # SHA-512 output
# mosquitto_passwd's own default. The passwords we hash are 256-bit random secrets, which no number of
# iterations makes any stronger, while the broker pays the iterations on every (re)connect of a commune.
DEFAULT_ITERATIONS = 101
PASSWORD_BYTES = 32


class InvalidBrokerHash(ValueError):
    """A stored broker hash is not in mosquitto's ``$7$`` format."""


def new_password() -> str:
    """A fresh random broker password (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The ``$7$`` hash of `password` that mosquitto checks a CONNECT against."""
    if not password:
        raise ValueError("an empty broker password is not allowed")
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, KEY_BYTES)
    return f"{PREFIX}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def parse_hash(encoded: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, key) of a ``$7$`` hash; raises InvalidBrokerHash for anything else."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        raise InvalidBrokerHash("not a $7$ (PBKDF2-SHA512) mosquitto hash")
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        key = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        raise InvalidBrokerHash("malformed $7$ mosquitto hash") from None
    if iterations < 1 or not salt or len(key) != KEY_BYTES:
        raise InvalidBrokerHash("malformed $7$ mosquitto hash")
    return iterations, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches the ``$7$`` hash (constant-time comparison)."""
    iterations, salt, key = parse_hash(encoded)
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(key))
    return hmac.compare_digest(candidate, key)
