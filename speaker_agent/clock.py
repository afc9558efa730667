"""Time as the agent sees it, injectable so the simulator can skew or speed it up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mqtt_contract.times import isoformat, parse_time

__all__ = ["Clock", "SystemClock", "isoformat", "parse_time"]


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
