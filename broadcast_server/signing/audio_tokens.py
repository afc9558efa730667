"""Expiring download tokens for audio URLs: HMAC-SHA256 over the file's SHA-256 and the expiry.

Pure functions, no I/O: the audio route checks a token without a database round trip, which keeps the
emergency path (every cluster of a district downloading at once) fast.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mqtt_contract.signing import b64url

# A token outlives its command by this much: a download that started in time may resume after a break.
GRACE_S = 3600


class AudioTokenRefused(PermissionError):
    """A download without a valid token; the message says why, in English, for the 403 answer."""


def audio_token(secret: bytes, sha256: str, expires: int) -> str:
    return b64url(hmac.new(secret, f"{sha256}.{expires}".encode(), hashlib.sha256).digest())


@lru_cache(maxsize=1024)  # pure; a broadcast's commands carry one URL: made once, not once per cluster
def authorised_url(url: str, sha256: str, expires: int, secret: bytes) -> str:
    """The URL with ``exp`` and ``tok`` query parameters (replacing any there already)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("exp", "tok")]
    query += [("exp", str(expires)), ("tok", audio_token(secret, sha256, expires))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_audio_token(secret: bytes, sha256: str, expires: str | None, token: str | None, now: float) -> None:
    """Return if the token allows downloading this file now; raise AudioTokenRefused otherwise."""
    if not expires or not token:
        raise AudioTokenRefused("audio download needs a token (exp and tok query parameters) or a signed-in user")
    if not expires.isdigit() or len(expires) > 12:
        raise AudioTokenRefused("audio token expiry 'exp' must be a Unix time in seconds")
    if not hmac.compare_digest(token.encode(), audio_token(secret, sha256, int(expires)).encode()):
        raise AudioTokenRefused("audio token is not valid for this file")
    if int(expires) <= now:
        raise AudioTokenRefused("audio token has expired")
