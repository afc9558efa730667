"""Vietnamese number reading: integers, decimals, digit strings and Roman numerals."""

from __future__ import annotations

import re

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Integers longer than this are read digit by digit (serial numbers, account numbers).
MAX_INT_DIGITS = 15


def read_digits(digits: str) -> str:
    """'0912' -> 'không chín một hai' (phone numbers, codes)."""
    return " ".join(DIGITS[int(d)] for d in digits if d.isascii() and d.isdigit())


def _read_below_100(n: int) -> str:
    tens, units = divmod(n, 10)
    if tens == 0:
        return DIGITS[units]
    if tens == 1:
        head = "mười"
        if units == 0:
            return head
        return f"{head} {'lăm' if units == 5 else DIGITS[units]}"
    head = f"{DIGITS[tens]} mươi"
    if units == 0:
        return head
    tail = {1: "mốt", 4: "tư", 5: "lăm"}.get(units, DIGITS[units])
    return f"{head} {tail}"


def _read_below_1000(n: int, *, full: bool) -> str:
    """Read 0 < n < 1000; `full` forces 'không trăm' / 'linh' as inside a larger number."""
    hundreds, rest = divmod(n, 100)
    if hundreds == 0 and not full:
        return _read_below_100(rest)
    parts = [f"{DIGITS[hundreds]} trăm"]
    if rest == 0:
        return parts[0]
    if rest < 10:
        parts.append(f"linh {DIGITS[rest]}")
    else:
        parts.append(_read_below_100(rest))
    return " ".join(parts)


def read_int(n: int) -> str:
    """Read a non-negative integer: 2024 -> 'hai nghìn không trăm hai mươi tư'."""
    if n < 0:
        return "âm " + read_int(-n)
    if n == 0:
        return "không"
    if n >= 1_000_000_000:
        high, low = divmod(n, 1_000_000_000)
        text = f"{read_int(high)} tỷ"
        return text if low == 0 else f"{text} {_read_groups(low, full=True)}"
    return _read_groups(n, full=False)


def _read_groups(n: int, *, full: bool) -> str:
    """Read 0 < n < 1e9 in groups of three (triệu, nghìn)."""
    words: list[str] = []
    for scale, name in ((1_000_000, "triệu"), (1_000, "nghìn"), (1, "")):
        group = (n // scale) % 1000
        if group == 0:
            continue
        text = _read_below_1000(group, full=full or bool(words))
        words.append(f"{text} {name}".strip())
    return " ".join(words)


def read_int_str(digits: str) -> str:
    """Read an integer written as ASCII digits, digit by digit when absurdly long."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > MAX_INT_DIGITS:
        return read_digits(digits)
    return read_int(int(digits))


def read_fraction(digits: str) -> str:
    """Digits after the decimal comma: '5' -> 'năm', '05' -> 'không năm', '44' -> 'bốn mươi bốn'."""
    if digits.startswith("0") or len(digits) > 3:
        return read_digits(digits)
    return read_int(int(digits))


NUMBER_RE = r"[0-9]{1,3}(?:\.[0-9]{3})+(?![0-9])(?:,[0-9]+)?|[0-9]+(?:,[0-9]+)?"


def read_number(text: str) -> str:
    """Read '1.250.000' (dot groups thousands), '3,5' (comma is the decimal mark), '2024'."""
    whole, _, frac = text.partition(",")
    spoken = read_int_str(whole.replace(".", ""))
    if frac:
        spoken += " phẩy " + read_fraction(frac)
    return spoken


def read_ordinal(n: int) -> str:
    """Vietnamese ordinal after 'thứ': 1 -> 'nhất', 4 -> 'tư', others as cardinals."""
    return {1: "nhất", 4: "tư"}.get(n, read_int(n))


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
ROMAN_RE = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")


def roman_to_int(text: str) -> int | None:
    """Value of a well-formed Roman numeral, None otherwise."""
    if not text or not ROMAN_RE.fullmatch(text):
        return None
    total = 0
    for i, ch in enumerate(text):
        value = _ROMAN[ch]
        if i + 1 < len(text) and _ROMAN[text[i + 1]] > value:
            total -= value
        else:
            total += value
    return total
