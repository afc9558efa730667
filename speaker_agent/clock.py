"""Time as the agent sees it, injectable so the simulator can skew or speed it up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mqtt_contract.times import isoformat, parse_time

__all__ = ["AcceleratedClock", "Clock", "SystemClock", "isoformat", "parse_time"]


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


class AcceleratedClock:
    """Virtual time that starts at `start` and runs `speed` times faster than the loop's clock.

    The simulator shares one among its agents to play a week of schedule in minutes; every agent then
    agrees on the time, as NTP-synchronised devices would.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._t0: float | None = None

    def _elapsed(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return (time.monotonic() - self._t0) * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def wall_seconds(self, virtual_seconds: float) -> float:
        """How many real seconds a span of virtual time takes."""
        return virtual_seconds / self.speed
