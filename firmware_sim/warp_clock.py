"""Virtual time that runs slowly while programmes air and fast in between: a week in a minute or two.

A loudspeaker schedule is hours of silence around minutes of programmes. Running everything at one
high speed squeezes the programmes into milliseconds, where event-loop jitter looks like lateness;
running at one low speed makes a week take an hour. The warp clock runs `slow` times real time inside
the given intervals (the airings, with a margin) and `fast` times real time elsewhere. Wall time and
virtual time map to each other piecewise-linearly, so a latency measured in virtual time converts back
to real seconds exactly (`wall_at`).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterable
from datetime import datetime, timedelta


class WarpClock:
    def __init__(
        self,
        start: datetime,
        slow_intervals: Iterable[tuple[datetime, datetime]],
        *,
        slow: float,
        fast: float,
        other_intervals: Iterable[tuple[datetime, datetime, float]] = (),
    ) -> None:
        """`other_intervals` run at their own speed (e.g. real time around an emergency); where intervals
        overlap the slowest speed wins."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if not 0 < slow <= fast:
            raise ValueError("need 0 < slow <= fast")
        spans = [((a - start).total_seconds(), (b - start).total_seconds(), slow) for a, b in slow_intervals]
        for a, b, speed in other_intervals:
            if speed <= 0:
                raise ValueError("interval speeds must be positive")
            spans.append(((a - start).total_seconds(), (b - start).total_seconds(), speed))
        spans = [(max(lo, 0.0), hi, speed) for lo, hi, speed in spans if hi > max(lo, 0.0)]
        # Segments of virtual seconds since start: (virtual_from, wall_from, speed).
        self._v: list[float] = [0.0]
        self._w: list[float] = [0.0]
        self._speed: list[float] = []
        points = sorted({0.0} | {lo for lo, _, _ in spans} | {hi for _, hi, _ in spans})
        for lo, hi in zip(points, points[1:], strict=False):
            speed = min((s for a, b, s in spans if a <= lo and hi <= b), default=fast)
            if self._speed and self._speed[-1] == speed:  # extend the segment in progress
                self._v.pop()
                self._w.pop()
                self._speed.pop()
            self._add(hi, speed)
        self._speed.append(fast)  # after the last interval, fast for ever
        self.start = start
        self.slow, self.fast = slow, fast
        self._t0: float | None = None

    def _add(self, v_end: float, speed: float) -> None:
        self._w.append(self._w[-1] + (v_end - self._v[-1]) / speed)
        self._v.append(v_end)
        self._speed.append(speed)

    def _elapsed_wall(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return time.monotonic() - self._t0

    def _virtual_at_wall(self, wall: float) -> float:
        i = bisect.bisect_right(self._w, wall) - 1
        return self._v[i] + (wall - self._w[i]) * self._speed[i]

    def _wall_at_virtual(self, virtual: float) -> float:
        i = bisect.bisect_right(self._v, virtual) - 1
        return self._w[i] + (virtual - self._v[i]) / self._speed[i]

    def restart(self) -> None:
        """Start (again) from `start`: lets a demo connect and prime everything before time begins to run."""
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._virtual_at_wall(self._elapsed_wall()))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wall_now = self._elapsed_wall()
        target = self._virtual_at_wall(wall_now) + seconds
        await asyncio.sleep(max(0.0, self._wall_at_virtual(target) - wall_now))

    def wall_at(self, moment: datetime) -> float:
        """Seconds of real time since the clock started at which virtual time reads `moment`."""
        return self._wall_at_virtual((moment - self.start).total_seconds())

    def wall_seconds_between(self, a: datetime, b: datetime) -> float:
        return self.wall_at(b) - self.wall_at(a)

    def total_wall(self, until: datetime) -> float:
        """How long in real time the clock takes from its start to `until`."""
        return self.wall_at(until)
