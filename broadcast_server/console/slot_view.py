"""One slot as the console shows it: its page and its row in the list. Pure; the words are
`scheduling/slot_words.py`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class SlotItem:
    """One item of the slot's programme; `relay_s` is a live relay's length (None: a text or a recording)."""

    title: str
    priority: str
    relay_s: int | None = None


@dataclass(frozen=True)
class SlotView:
    id: str
    title: str
    repetition: str
    first_local: datetime
    until: date | None
    layer: str
    items: tuple[SlotItem, ...]
    units: tuple[str, ...]
    clusters: tuple[str, ...]
    groups: tuple[str, ...]
    reached: int
    upcoming: tuple[datetime, ...]
    cancelled_at: datetime | None


@dataclass(frozen=True)
class SlotRow:
    id: str
    title: str
    repetition: str
    first_local: datetime
    until: date | None
    places: tuple[str, ...]  # "Xã Bình Hải", "nhóm ven-bien", "cụm loa X"
    reached: int
    state: str
