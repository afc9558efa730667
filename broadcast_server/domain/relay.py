"""Live relay (tiếp sóng): which stream addresses and lengths a relay bulletin may have (pure).

The address goes to every cluster in a signed command and is shown in the console, so it must be a plain
http(s) address that the contract accepts, and carry no password.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A relay lasts from one minute to four hours (the contract's own ceiling for `play.stream.duration_s`).
MIN_RELAY_S, MAX_RELAY_S = 60, 4 * 3600
MAX_STREAM_URL_LENGTH = 2000
_CONTRACT_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


def stream_url_problem(url: str) -> str | None:
    """Why a stream address is refused (precise English), or None when clusters can be sent it."""
    if not url:
        return "stream_url is empty"
    if len(url) > MAX_STREAM_URL_LENGTH:
        return f"stream_url is longer than {MAX_STREAM_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        credentials = parts.username is not None or parts.password is not None
        parts.port  # noqa: B018  (raises for a port outside 0-65535)
    except ValueError:  # an unclosed "[" of an IPv6 address, a port past 65535
        return "stream_url is not a valid address"
    if parts.scheme not in ("http", "https"):
        return f"stream_url must start with http:// or https://, got {url[:40]!r}"
    if not _CONTRACT_URL.match(url) or not host:
        return "stream_url must be an http(s) address with a host and no spaces"
    if credentials:
        return "stream_url must not carry a user name or password: it is sent to every cluster and shown in the console"
    return None


def relay_duration_problem(duration_s: int) -> str | None:
    """Why a relay length is refused, or None when it is allowed."""
    if MIN_RELAY_S <= duration_s <= MAX_RELAY_S:
        return None
    return f"relay duration must be between {MIN_RELAY_S} and {MAX_RELAY_S} s (1 minute to 4 hours), got {duration_s}"
