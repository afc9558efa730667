"""Dates (15/3/2024, 2/9, 8/2023) and times (7h30, 17:00, 14 giờ 05) in spoken Vietnamese."""

from __future__ import annotations

import re

from audio.normalize.numbers import read_int


def _preceded_by(match: re.Match[str], word: str) -> bool:
    before = match.string[: match.start()].rstrip().lower()
    return before.endswith(word) and (len(before) == len(word) or not before[-len(word) - 1].isalnum())


def read_day(day: int) -> str:
    return f"mùng {read_int(day)}" if day <= 10 else read_int(day)


def read_month(month: int) -> str:
    return "tư" if month == 4 else read_int(month)


# Day/month/year; the separator may be '/', '-' or '.' but must be the same on both sides.
FULL_DATE_RE = re.compile(r"(?<![0-9/.,])([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})(?![0-9]|/[0-9])")
MONTH_YEAR_RE = re.compile(r"(?<![0-9/.,])([0-9]{1,2})/([0-9]{4})(?![0-9]|/[0-9])")
DAY_MONTH_RE = re.compile(r"(?<![0-9/.,])([0-9]{1,2})/([0-9]{1,2})(?![0-9]|/[0-9A-Za-zĐđ])")


def _full_date(match: re.Match[str]) -> str:
    day, month, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return match.group(0)
    prefix = "" if _preceded_by(match, "ngày") else "ngày "
    return f"{prefix}{read_int(day)} tháng {read_month(month)} năm {read_int(year)}"


def _month_year(match: re.Match[str]) -> str:
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return match.group(0)
    prefix = "" if _preceded_by(match, "tháng") else "tháng "
    return f"{prefix}{read_month(month)} năm {read_int(year)}"


def _day_month(match: re.Match[str]) -> str:
    day, month = int(match.group(1)), int(match.group(2))
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return f"{read_int(day)} trên {read_int(month)}"
    if _preceded_by(match, "ngày"):
        return f"{read_day(day)} tháng {read_month(month)}"
    return f"{read_day(day) if day <= 10 else 'ngày ' + read_int(day)} tháng {read_month(month)}"


def replace_dates(text: str) -> str:
    text = FULL_DATE_RE.sub(_full_date, text)
    text = MONTH_YEAR_RE.sub(_month_year, text)
    return DAY_MONTH_RE.sub(_day_month, text)


TIME_H_RE = re.compile(r"(?<![0-9.,])([0-9]{1,2})\s?(?:h([0-9]{2})?|g([0-9]{2}))(?![0-9A-Za-zÀ-ỹ])")
TIME_COLON_RE = re.compile(r"(?<![0-9.,:])([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![0-9:])")
TIME_WORD_RE = re.compile(r"(?<![0-9.,])([0-9]{1,2}) giờ ([0-9]{1,2})(?![0-9])(\s*phút)?")


def _time(hour: int, minute: int, second: int = 0, *, minute_word: bool = True) -> str | None:
    if hour > 24 or minute > 59 or second > 59:
        return None
    spoken = f"{read_int(hour)} giờ"
    if minute:
        spoken += f" {read_int(minute)}" + (" phút" if minute_word else "")
    if second:
        spoken += f" {read_int(second)} giây"
    return spoken


def replace_times(text: str) -> str:
    def h(m: re.Match[str]) -> str:
        return _time(int(m.group(1)), int(m.group(2) or m.group(3) or 0)) or m.group(0)

    def colon(m: re.Match[str]) -> str:
        return _time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) or m.group(0)

    def word(m: re.Match[str]) -> str:
        spoken = _time(int(m.group(1)), int(m.group(2)), minute_word=False)
        if spoken is None:
            return m.group(0)
        return spoken + (" phút" if int(m.group(2)) else "")

    text = TIME_WORD_RE.sub(word, text)
    text = TIME_COLON_RE.sub(colon, text)
    return TIME_H_RE.sub(h, text)
