"""A week of airings laid out by local day (Monday first), for the schedule page. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from broadcast_server.console.upcoming import Airing
from broadcast_server.scheduling.slot_words import WEEKDAY_NAMES_VI
from broadcast_server.statistics.periods import LOCAL_TZ


@dataclass(frozen=True)
class CalendarDay:
    day: date
    name: str
    airings: tuple[Airing, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.day:%d/%m}"


def week_start(day: date) -> date:
    """The Monday of the week holding `day`."""
    return day - timedelta(days=day.weekday())


def week_days(monday: date, airings: Iterable[Airing]) -> list[CalendarDay]:
    """Seven days from `monday`, each with its airings in time order (airings of other days are ignored)."""
    by_day: dict[date, list[Airing]] = {monday + timedelta(days=i): [] for i in range(7)}
    for airing in airings:
        local = airing.start_at.astimezone(LOCAL_TZ).date()
        if local in by_day:
            by_day[local].append(airing)
    return [
        CalendarDay(day, WEEKDAY_NAMES_VI[i], tuple(sorted(items, key=lambda a: (a.start_at, a.title))))
        for i, (day, items) in enumerate(by_day.items())
    ]
