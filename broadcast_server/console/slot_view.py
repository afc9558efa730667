"""One slot as the console shows it (its page, its row in the list), and who sees it. Pure; the words are
`scheduling/slot_words.py`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from broadcast_server.scheduling.cancel import SlotReach


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


def slot_visible(reach: SlotReach, visible_units: set[int] | None, visible_clusters: set[str] | None) -> bool:
    """Whether a user of that scope sees the slot: it plays on one of their clusters, or names only their area."""
    if visible_units is None or visible_clusters is None:
        return True
    if reach.reached & visible_clusters:
        return True
    named = bool(reach.unit_ids or reach.cluster_ids)
    return named and set(reach.unit_ids) <= visible_units and set(reach.cluster_ids) <= visible_clusters


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
