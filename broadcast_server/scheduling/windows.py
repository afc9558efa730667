"""What each cluster must hold of the schedule for a window: entries from slots, rules and targets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from broadcast_server.scheduling.recurrence import LOCAL_TZ, occurrences
from speaker_agent.playout import Entry, Item

DEFAULT_WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class ResolvedSlot:
    """A slot with its programme's items (audio, or a relay's stream, known) and the clusters its target reaches
    today."""

    id: str
    title: str
    start_date: date
    start_time: time
    rule: str | None
    until: date | None
    layer: str
    on_interrupt: str
    items: tuple[Item, ...]
    cluster_ids: frozenset[str]
    bulletin_ids: tuple[str, ...] = ()  # the bulletin behind each item, where the slot is stored


def entry_id(slot_id: str, start_at: datetime) -> str:
    """Occurrence id: stable, so an agent, a report and a preview all name the same airing alike."""
    return f"{slot_id}@{start_at:%Y%m%dT%H%MZ}"


def slot_entries(slot: ResolvedSlot, window_start: datetime, window_end: datetime) -> list[Entry]:
    """The slot's occurrences in the window as playout entries (the same for every cluster it targets)."""
    if slot.until is not None:
        last = datetime.combine(slot.until + timedelta(days=1), time(0), LOCAL_TZ)
        window_end = min(window_end, last)
    starts = occurrences(slot.rule, datetime.combine(slot.start_date, slot.start_time), window_start, window_end)
    return [
        Entry(
            id=entry_id(slot.id, start),
            start_at=start,
            title=slot.title,
            items=slot.items,
            layer=slot.layer,  # type: ignore[arg-type]
            on_interrupt=slot.on_interrupt,  # type: ignore[arg-type]
        )
        for start in starts
    ]


def entries_by_cluster(
    slots: Iterable[ResolvedSlot], window_start: datetime, window_end: datetime
) -> Mapping[str, list[Entry]]:
    """Every cluster's entries in the window, sorted by time."""
    result: dict[str, list[Entry]] = {}
    for slot in slots:
        entries = slot_entries(slot, window_start, window_end)
        if not entries:
            continue
        for cluster_id in slot.cluster_ids:
            result.setdefault(cluster_id, []).extend(entries)
    for entries in result.values():
        entries.sort(key=lambda e: (e.start_at, e.id))
    return result
