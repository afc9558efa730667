"""Time as the agent sees it, injectable so the simulator can skew or speed it up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds of this clock's time."""


class SystemClock:
    """The device's own clock; `offset_s` lets the simulator model a clock that is off."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def isoformat(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as the contract's date-time fields carry it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse a contract date-time (RFC 3339, 'Z' or offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"date-time without offset: {text!r}")
    return moment.astimezone(UTC)
