"""Uptime, drops (flapping) and "since when" from a cluster's presence events. Pure: no I/O.

A timeline is the presence at the start of a window plus the events inside it, in time order. A
'reconnect' is an offline and an online at the same instant: one drop, no time lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Transition:
    at: datetime
    online: bool
    cause: str = ""


@dataclass(frozen=True)
class WindowSummary:
    """One cluster over [start, end)."""

    online_s: float
    drops: int  # online-to-offline changes inside the window
    online_at_end: bool
    length_s: float

    @property
    def uptime(self) -> float:
        """Share of the window spent online (0.0 for an empty window)."""
        return self.online_s / self.length_s if self.length_s > 0 else 0.0


def summarize(initial_online: bool, events: Iterable[Transition], start: datetime, end: datetime) -> WindowSummary:
    """Online seconds and drops over [start, end), from the presence at ``start`` and the later events.

    Events outside the window are ignored (those before ``start`` are already in ``initial_online``).
    Events must be in time order; a repeated state (online after online) changes nothing.
    """
    if end <= start:
        return WindowSummary(0.0, 0, initial_online, 0.0)
    online = initial_online
    since = start
    online_s = 0.0
    drops = 0
    for event in events:
        if event.at < start:
            continue
        if event.at >= end:
            break
        if event.online == online:
            continue
        if online:
            online_s += (event.at - since).total_seconds()
            drops += 1
        online, since = event.online, event.at
    if online:
        online_s += (end - since).total_seconds()
    return WindowSummary(online_s, drops, online, (end - start).total_seconds())


def state_at(events: Sequence[Transition], at: datetime, default: bool = False) -> bool:
    """The presence just before ``at`` (the last event strictly earlier), else ``default``."""
    state = default
    for event in events:
        if event.at >= at:
            break
        state = event.online
    return state


def online_since(events: Sequence[Transition], online: bool) -> datetime | None:
    """When the current run of ``online`` (True or False) began: the first event of the last run."""
    since = None
    for event in reversed(events):
        if event.online != online:
            break
        since = event.at
    return since
