"""The playout planner: a single loudspeaker channel, programme entries queued on it by fixed rules.

Rules (Thông tư 39/2020/TT-BTTTT priorities, and what radio automation users expect):
- Within an entry, 'priority' (ưu tiên) items play before 'normal' (thông thường) ones; among items of
  the same priority the programme's own order stands. The law leaves the order of a commune's and a
  district's priority items to the commune user: they set it by ordering the programme.
- Nothing is cut in the middle by the schedule. An 'insert' entry that falls due while a 'background'
  programme plays goes in at the next item boundary; the background resumes after it.
- Two background entries that overlap are queued: the later one starts when the earlier one ends.
  `find_conflicts` reports that before a schedule is saved.
- Emergencies (khẩn cấp) are not scheduled: they are live commands that preempt whatever plays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Layer = Literal["background", "insert"]
OnInterrupt = Literal["resume", "restart", "drop"]
PRIORITY_RANK = {"priority": 0, "normal": 1}


@dataclass(frozen=True)
class AudioRef:
    url: str
    sha256: str
    size_bytes: int
    duration_s: float


@dataclass(frozen=True)
class StreamRef:
    """A live stream relayed for `duration_s` seconds (tiếp sóng): nothing to download ahead."""

    url: str
    duration_s: float


@dataclass(frozen=True)
class Item:
    """One item of a programme: a file (`audio`) or a live relay (`stream`), exactly one of them."""

    title: str
    audio: AudioRef | None = None
    priority: str = "normal"  # 'priority' or 'normal'
    stream: StreamRef | None = None

    def __post_init__(self) -> None:
        if (self.audio is None) == (self.stream is None):
            raise ValueError(f"item {self.title!r}: give exactly one of audio and stream")

    @property
    def duration_s(self) -> float:
        return self.audio.duration_s if self.audio is not None else self.stream.duration_s  # type: ignore[union-attr]


@dataclass(frozen=True)
class Entry:
    """One occurrence of a programme slot on a cluster: due at `start_at` (aware UTC)."""

    id: str
    start_at: datetime
    title: str
    items: tuple[Item, ...]
    layer: Layer = "background"
    on_interrupt: OnInterrupt = "restart"

    @property
    def duration_s(self) -> float:
        return sum(item.duration_s for item in self.items)


@dataclass(frozen=True)
class PlannedPlay:
    """One item the channel will play, from `start` to `end` (aware UTC)."""

    entry_id: str
    item_index: int  # index in the entry's items as ordered by `order_items`
    title: str
    audio: AudioRef | None  # None for a live relay
    start: datetime
    end: datetime
    due: datetime  # the entry's start_at
    stream: StreamRef | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.entry_id, self.item_index)

    @property
    def delay_s(self) -> float:
        return (self.start - self.due).total_seconds()


@dataclass(frozen=True)
class Conflict:
    """Two entries that would overlap on one cluster, and what the planner will do about it."""

    first: str
    second: str
    overlap_s: float
    rule: str = field(default="")


def order_items(items: Iterable[Item]) -> tuple[Item, ...]:
    """Priority items first, each tier in programme order (sorted is stable)."""
    items = tuple(items)
    return tuple(items[k] for k in item_order(items))


def item_order(items: Sequence[Item]) -> list[int]:
    """The programme positions of `items` in the order they play: what a report's '#<index>' counts."""
    return sorted(range(len(items)), key=lambda k: PRIORITY_RANK.get(items[k].priority, 1))


def plan(
    entries: Iterable[Entry],
    *,
    start: datetime,
    end: datetime,
    done: Iterable[tuple[str, int]] = (),
) -> list[PlannedPlay]:
    """Every item the channel plays from `start` until `end`, in order.

    `done` lists (entry id, item index) already played: a planner restarted mid-programme (after a power
    cut, or after an emergency) skips them and carries on with the rest.
    """
    finished = set(done)
    queues: dict[str, list[tuple[int, Item]]] = {}
    due: dict[str, datetime] = {}
    by_layer: dict[str, list[Entry]] = {"background": [], "insert": []}
    for entry in sorted(entries, key=lambda e: (e.start_at, e.id)):
        remaining = [(i, item) for i, item in enumerate(order_items(entry.items)) if (entry.id, i) not in finished]
        if remaining:
            queues[entry.id] = remaining
            due[entry.id] = entry.start_at
            by_layer[entry.layer].append(entry)
    titles = {e.id: e.title for layer in by_layer.values() for e in layer}

    plays: list[PlannedPlay] = []
    now = start
    current_background: str | None = None
    while now < end:
        ready_inserts = [e for e in by_layer["insert"] if queues.get(e.id) and e.start_at <= now]
        if ready_inserts:
            chosen = ready_inserts[0].id
        else:
            if current_background is None or not queues.get(current_background):
                ready = [e for e in by_layer["background"] if queues.get(e.id) and e.start_at <= now]
                current_background = ready[0].id if ready else None
            chosen = current_background
        if chosen is None:
            upcoming = [e.start_at for layer in by_layer.values() for e in layer if queues.get(e.id)]
            if not upcoming:
                break
            now = max(now, min(upcoming))
            continue
        index, item = queues[chosen].pop(0)
        finish = now + timedelta(seconds=item.duration_s)
        title = item.title or titles[chosen]
        plays.append(PlannedPlay(chosen, index, title, item.audio, now, finish, due[chosen], item.stream))
        now = finish
    return plays


def find_conflicts(entries: Iterable[Entry]) -> list[Conflict]:
    """Pairs of entries whose air times overlap, with the rule the planner applies to each."""
    ordered = sorted(entries, key=lambda e: (e.start_at, e.id))
    conflicts = []
    for i, first in enumerate(ordered):
        first_end = first.start_at + timedelta(seconds=first.duration_s)
        for second in ordered[i + 1 :]:
            if second.start_at >= first_end:
                break
            overlap = (first_end - second.start_at).total_seconds()
            if second.layer == "insert" and first.layer == "background":
                rule = "insert goes in at the next item boundary of the background programme, which then resumes"
            elif first.layer == "insert" and second.layer == "background":
                rule = "background programme starts after the insert ends"
            else:
                rule = "the later entry is queued and starts when the earlier one ends"
            conflicts.append(Conflict(first.id, second.id, overlap, rule))
    return conflicts
