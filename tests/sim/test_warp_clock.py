"""The warp clock's piecewise mapping between real and virtual time (pure arithmetic, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.warp_clock import WarpClock

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_slow_inside_intervals_fast_elsewhere():
    clock = WarpClock(T0, [(at(100), at(200))], slow=10, fast=100)
    assert clock.wall_at(at(100)) == pytest.approx(1.0)  # 100 virtual s at 100x
    assert clock.wall_at(at(200)) == pytest.approx(11.0)  # then 100 at 10x
    assert clock.wall_at(at(1200)) == pytest.approx(21.0)  # fast for ever after
    assert clock.wall_seconds_between(at(150), at(160)) == pytest.approx(1.0)


def test_overlapping_intervals_merge_and_the_slowest_speed_wins():
    clock = WarpClock(
        T0,
        [(at(0), at(100)), (at(50), at(150))],
        slow=10,
        fast=100,
        other_intervals=[(at(60), at(70), 1.0), (at(500), at(510), 1000.0)],
    )
    assert clock.wall_at(at(60)) == pytest.approx(6.0)
    assert clock.wall_at(at(70)) == pytest.approx(16.0)  # ten real seconds: real time around an event
    assert clock.wall_at(at(150)) == pytest.approx(24.0)
    assert clock.wall_seconds_between(at(500), at(510)) == pytest.approx(0.01)  # a span runs at its own speed


def test_intervals_before_the_start_are_clipped_and_bad_speeds_refused():
    clock = WarpClock(T0, [(at(-50), at(10))], slow=2, fast=20)
    assert clock.wall_at(at(10)) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        WarpClock(T0, [], slow=0, fast=1)
    with pytest.raises(ValueError):
        WarpClock(T0, [], slow=1, fast=2, other_intervals=[(at(0), at(1), 0.0)])
    with pytest.raises(ValueError):
        WarpClock(T0.replace(tzinfo=None), [], slow=1, fast=2)
