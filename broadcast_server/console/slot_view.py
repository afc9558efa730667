"""One slot as the console shows it: its repetition in words, its items, its target, its next airings. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from broadcast_server.console.week_calendar import WEEKDAY_NAMES_VI
from broadcast_server.scheduling.recurrence import LOCAL_TZ, InvalidRule, local_start, occurrences

DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
LOOKAHEAD = timedelta(days=400)


def repetition_vi(rule: str | None) -> str:
    """'Một lần', 'Hằng ngày', 'Hằng tuần: Thứ Hai, Thứ Năm'; any other RFC 5545 rule as written."""
    if rule is None:
        return "Một lần"
    parts = dict(p.split("=", 1) for p in rule.upper().split(";") if "=" in p)
    if set(parts) == {"FREQ"} and parts["FREQ"] == "DAILY":
        return "Hằng ngày"
    if set(parts) <= {"FREQ", "BYDAY"} and parts["FREQ"] == "WEEKLY":
        days = parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []
        if all(d in DAY_CODES for d in days):
            named = [WEEKDAY_NAMES_VI[DAY_CODES.index(d)] for d in sorted(days, key=DAY_CODES.index)]
            return "Hằng tuần: " + ", ".join(named) if named else "Hằng tuần"
    return f"Theo quy tắc {rule}"


def next_airings(
    rule: str | None, start_date: date, start_time: time, until: date | None, now: datetime, count: int = 5
) -> list[datetime]:
    """The slot's next `count` start times (UTC) from `now`, within about a year; none past `until`."""
    end = now + LOOKAHEAD
    if until is not None:
        end = min(end, datetime.combine(until + timedelta(days=1), time(0), LOCAL_TZ))
    if end <= now:
        return []
    try:
        return occurrences(rule, local_start(start_date, start_time), now, end)[:count]
    except InvalidRule:
        return []


@dataclass(frozen=True)
class SlotView:
    id: str
    title: str
    repetition: str
    first_local: datetime
    until: date | None
    layer: str
    items: tuple[tuple[str, str], ...]  # (title, priority)
    units: tuple[str, ...]
    clusters: tuple[str, ...]
    groups: tuple[str, ...]
    reached: int
    upcoming: tuple[datetime, ...]
    cancelled_at: datetime | None
