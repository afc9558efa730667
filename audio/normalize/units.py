"""Units of measure and money written after a number: 5 km -> năm ki lô mét, 25.000đ -> ... đồng."""

from __future__ import annotations

import re

# Longest first so 'km/h' wins over 'km' and 'm'. Single-letter units need to touch the number.
UNITS: dict[str, str] = {
    "km/h": "ki lô mét trên giờ",
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "°C": "độ xê",
    "ºC": "độ xê",
    "độ C": "độ xê",
    "VNĐ": "đồng",
    "VND": "đồng",
    "đồng": "đồng",
    "MHz": "mê ga héc",
    "Mhz": "mê ga héc",
    "kHz": "ki lô héc",
    "GB": "gi ga bai",
    "MB": "mê ga bai",
    "km": "ki lô mét",
    "cm": "xen ti mét",
    "mm": "mi li mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "ml": "mi li lít",
    "kW": "ki lô oát",
    "kWh": "ki lô oát giờ",
    "%": "phần trăm",
    "°": "độ",
    "đ": "đồng",
    "m": "mét",
    "g": "gam",
    "l": "lít",
    "t": "tấn",
}
_ORDERED = sorted(UNITS, key=len, reverse=True)
UNIT_RE = "(?:" + "|".join(re.escape(u) for u in _ORDERED) + r")(?![\wÀ-ỹ²³])"


def read_unit(unit: str, *, spaced: bool) -> str | None:
    """Reading of `unit`; None for a single-letter unit separated by a space (likely a word, not a unit)."""
    if spaced and len(unit) == 1 and unit.isalpha():
        return None
    return UNITS.get(unit)
