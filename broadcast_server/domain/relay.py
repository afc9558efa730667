"""Live relay (tiếp sóng): which stream addresses and lengths a relay bulletin may have (pure).

The address goes to every cluster in a signed command and is shown in the console, so it must be a plain
http(s) address that the contract accepts, and carry no password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# A relay lasts from one minute to four hours (the contract's own ceiling for `play.stream.duration_s`).
MIN_RELAY_S, MAX_RELAY_S = 60, 4 * 3600
# People give a relay's length in whole minutes (the console's form, `minutes:` in schedule files).
MIN_RELAY_MINUTES, MAX_RELAY_MINUTES = MIN_RELAY_S // 60, MAX_RELAY_S // 60
MAX_STREAM_URL_LENGTH = 2000
_CONTRACT_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


@dataclass(frozen=True)
class StreamUrlRefusal:
    """Why a stream address is refused: precise English (API, logs) and Vietnamese (console, schedule files)."""

    en: str
    vi: str


_NOT_AN_ADDRESS_VI = (
    "Địa chỉ luồng phát không hợp lệ: cần dạng http://tên-máy/đường-dẫn hoặc https://tên-máy/đường-dẫn."
)


def stream_url_refusal(url: str) -> StreamUrlRefusal | None:
    """Why clusters cannot be sent this stream address, in both languages, or None when they can."""
    if not url:
        return StreamUrlRefusal("stream_url is empty", "Hãy nhập địa chỉ luồng phát.")
    if len(url) > MAX_STREAM_URL_LENGTH:
        return StreamUrlRefusal(
            f"stream_url is longer than {MAX_STREAM_URL_LENGTH} characters",
            f"Địa chỉ luồng phát dài quá {MAX_STREAM_URL_LENGTH} ký tự.",
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        credentials = parts.username is not None or parts.password is not None
        parts.port  # noqa: B018  (raises for a port outside 0-65535)
    except ValueError:  # an unclosed "[" of an IPv6 address, a port past 65535
        return StreamUrlRefusal("stream_url is not a valid address", _NOT_AN_ADDRESS_VI)
    if parts.scheme not in ("http", "https"):
        return StreamUrlRefusal(
            f"stream_url must start with http:// or https://, got {url[:40]!r}",
            "Địa chỉ luồng phát phải bắt đầu bằng http:// hoặc https://.",
        )
    if not _CONTRACT_URL.match(url) or not host:
        spaces = any(ch.isspace() for ch in url)
        return StreamUrlRefusal(
            "stream_url must be an http(s) address with a host and no spaces",
            "Địa chỉ luồng phát không được có dấu cách." if spaces else _NOT_AN_ADDRESS_VI,
        )
    if credentials:
        return StreamUrlRefusal(
            "stream_url must not carry a user name or password: it is sent to every cluster and shown in the console",
            "Địa chỉ luồng phát không được chứa tên đăng nhập hay mật khẩu: "
            "địa chỉ được gửi tới mọi cụm loa và hiện trên trang quản lý.",
        )
    return None


def stream_url_problem(url: str) -> str | None:
    """Why a stream address is refused (precise English), or None when clusters can be sent it."""
    refusal = stream_url_refusal(url)
    return refusal.en if refusal else None


def relay_duration_problem(duration_s: int) -> str | None:
    """Why a relay length is refused, or None when it is allowed."""
    if MIN_RELAY_S <= duration_s <= MAX_RELAY_S:
        return None
    return f"relay duration must be between {MIN_RELAY_S} and {MAX_RELAY_S} s (1 minute to 4 hours), got {duration_s}"
