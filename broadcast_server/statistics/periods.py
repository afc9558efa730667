"""Local days and quarters: times are stored in UTC, people count days in Asia/Ho_Chi_Minh (UTC+7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        LOCAL_TZ: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:  # no time-zone database: Vietnam has been UTC+7 all year since 1975
        LOCAL_TZ = timezone(timedelta(hours=7), "+07")
except ImportError:  # pragma: no cover
    LOCAL_TZ = timezone(timedelta(hours=7), "+07")


def local_day(at: datetime) -> date:
    """The local calendar day of an aware instant."""
    return at.astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    """The UTC instant a local day begins."""
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(UTC)


def local_text(at: datetime | None, with_seconds: bool = False) -> str:
    """An instant as people read it: 'HH:MM dd/mm/yyyy' in local time ('—' for none)."""
    if at is None:
        return "—"
    return at.astimezone(LOCAL_TZ).strftime("%H:%M:%S %d/%m/%Y" if with_seconds else "%H:%M %d/%m/%Y")


def days(start: date, end: date) -> list[date]:
    """Every day of [start, end)."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


class QuarterError(ValueError):
    """A quarter written in a form we do not read; the message is in Vietnamese, for people."""


_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]\s*([1-4])\s*$")
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """'2026Q4' (also '2026-Q4', '2026q4')."""
        match = _QUARTER.match(text or "")
        if not match:
            raise QuarterError(f"Quý không hợp lệ: {text!r}. Viết theo dạng NĂMQsố, ví dụ 2026Q4 (quý 1 đến quý 4).")
        year, number = int(match.group(1)), int(match.group(2))
        if not 2000 <= year <= 2100:
            raise QuarterError(f"Năm {year} nằm ngoài khoảng 2000–2100.")
        return cls(year, number)

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        """The first day after the quarter."""
        return date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)

    @property
    def code(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def title(self) -> str:
        """'Quý IV năm 2026'."""
        return f"Quý {ROMAN[self.number]} năm {self.year}"
