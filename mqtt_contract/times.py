"""The contract's date-time format: RFC 3339 in UTC with a trailing Z, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime


def isoformat(moment: datetime) -> str:
    """Format an aware datetime as the contract carries it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse a contract date-time (RFC 3339, 'Z' or offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"date-time without offset: {text!r}")
    return moment.astimezone(UTC)
