"""Password hashing with Argon2id (argon2-cffi): hash, verify, and tell when a stored hash needs redoing."""

from __future__ import annotations

import os

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults follow RFC 9106's low-memory recommendation (Argon2id, 64 MiB, 3 passes).
# BCAST_PASSWORD_HASH_PROFILE=cheapest is for test runs only (hundreds of accounts hashed per run);
# hashes carry their parameters, so a server on the default verifies them and redoes them at sign-in.
_PROFILES = {"rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY, "cheapest": profiles.CHEAPEST}
_HASHER = PasswordHasher.from_parameters(_PROFILES[os.environ.get("BCAST_PASSWORD_HASH_PROFILE", "rfc9106-low-memory")])

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes of "password" is a cheap denial of service


class WeakPassword(ValueError):
    """A new password that is too short or too long."""


def check_new_password(password: str) -> None:
    """Refuse a password for a new account or a change: at least 8 characters, at most 1024."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    """The encoded Argon2id hash (parameters and salt included) to store."""
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str, hasher: PasswordHasher = _HASHER) -> bool:
    """Whether `password` matches; a malformed stored hash counts as no match."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher = _HASHER) -> bool:
    """Whether the hash was made with other parameters than the current ones (rehash after a good login)."""
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# Verified against when the username does not exist, so both cases cost the same time.
DUMMY_HASH = hash_password("bcast-no-such-account")
