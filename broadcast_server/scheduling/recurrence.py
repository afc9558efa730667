"""Recurring slots: RFC 5545 RRULEs evaluated in Vietnam's local time, returned in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7 all year: no daylight saving, but never mix UTC and local dates
MAX_OCCURRENCES = 100_000


class InvalidRule(ValueError):
    """A recurrence rule that RFC 5545 (as dateutil reads it) does not accept, or that the system refuses."""


def local_start(day: date, at: time) -> datetime:
    """Naive local datetime of a slot's first occurrence (rules are evaluated in local time)."""
    return datetime.combine(day, at)


def check_rule(rule: str) -> None:
    """Raise InvalidRule unless `rule` is an RRULE body such as 'FREQ=WEEKLY;BYDAY=MO'."""
    text = rule.strip()
    if not text:
        raise InvalidRule("empty rule")
    if text.upper().startswith(("DTSTART", "RRULE:")) or "\n" in text:
        raise InvalidRule("give only the RRULE body, e.g. FREQ=DAILY or FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    if "FREQ=" not in text.upper():
        raise InvalidRule(f"rule {rule!r} has no FREQ")
    for part in text.upper().split(";"):
        if part.startswith("INTERVAL=") and not (part[9:].isdigit() and int(part[9:]) >= 1):
            raise InvalidRule(f"INTERVAL must be a positive whole number in {rule!r}")
    if any(part in text.upper() for part in ("FREQ=SECONDLY", "FREQ=MINUTELY")):
        raise InvalidRule("rules more frequent than hourly are not allowed for broadcasts")
    try:
        rrulestr(text, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError) as exc:
        raise InvalidRule(f"invalid rule {rule!r}: {exc}") from None


def occurrences(
    rule: str | None, first_local: datetime, window_start: datetime, window_end: datetime
) -> list[datetime]:
    """UTC start times in [window_start, window_end) of a slot first due at `first_local` (naive local).

    `rule` None means the slot happens once.
    """
    if first_local.tzinfo is not None:
        raise ValueError("first_local must be naive local time")
    lo = window_start.astimezone(LOCAL_TZ).replace(tzinfo=None)
    hi = window_end.astimezone(LOCAL_TZ).replace(tzinfo=None)
    if rule is None:
        candidates = [first_local] if lo <= first_local < hi else []
    else:
        check_rule(rule)
        recurrence = rrulestr(rule.strip(), dtstart=first_local)
        candidates = recurrence.between(lo, hi, inc=True)
        candidates = [c for c in candidates if c < hi][:MAX_OCCURRENCES]
    return [c.replace(tzinfo=LOCAL_TZ).astimezone(UTC) for c in candidates]
