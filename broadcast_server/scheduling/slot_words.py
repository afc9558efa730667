"""Slots in the words a Vietnamese broadcaster reads: how one repeats, its state, where it plays, what comes next.

Pure: the console's slot pages and `bcast schedule list` both use it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from broadcast_server.scheduling.recurrence import LOCAL_TZ, InvalidRule, local_start, occurrences

WEEKDAY_NAMES_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # RFC 5545, Monday first as in Vietnam
ACTIVE, ENDED, CANCELLED = "Đang áp dụng", "Đã kết thúc", "Đã hủy"
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


def slot_state(rule: str | None, first_local: datetime, until: date | None, cancelled: bool, now: datetime) -> str:
    """'Đã hủy', 'Đã kết thúc' (a single airing past, or past its last day) or 'Đang áp dụng'."""
    if cancelled:
        return CANCELLED
    today = now.astimezone(LOCAL_TZ).date()
    if (rule is None and first_local <= now) or (until is not None and until < today):
        return ENDED
    return ACTIVE


def places_of(units: tuple[str, ...], groups: tuple[str, ...], clusters: tuple[str, ...]) -> tuple[str, ...]:
    """A target in a few words: each unit by its own name (the last part of its path), then groups and clusters."""
    return (
        *(path.split("/")[-1].strip() for path in units),
        *(f"nhóm {g}" for g in groups),
        *(f"cụm loa {c}" for c in clusters),
    )
