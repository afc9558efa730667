"""Numbers as Vietnamese readers write them: 1.234,5 (dot for thousands, comma for decimals)."""

from __future__ import annotations


def vn_int(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def vn_float(value: float, digits: int = 1) -> str:
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_percent(share: float | None, digits: int = 1) -> str:
    return "—" if share is None else f"{vn_float(share * 100, digits)}%"
