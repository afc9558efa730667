"""Statistics arithmetic. Pure: rows in, figures out; no database, no clock.

Definitions (the simulator's ground truth must follow the same ones):
- A delivery is one broadcast's command to one cluster. ``targeted``: deliveries; ``delivered``: those the
  cluster answered with an outcome (played, failed, missed, rejected, stopped); ``played``: played to the
  end; ``late``: played, but started more than ``late_after_s`` after its due time.
- Per reporting unit (commune, or district without communes) and period:
  ``bulletins_played``: broadcasts (airings) created in the period that at least one of the unit's
  clusters played to the end; ``clusters_played``: for each broadcast, the unit's clusters that played it
  to the end, summed over broadcasts (so ``clusters_played / clusters_targeted`` is the share of clusters
  that played the bulletins they were sent); ``broadcast_seconds``: the unit's airtime, for each broadcast
  it played the longest ``played_s`` among its clusters, each ``played_s`` rounded to the millisecond,
  summed in milliseconds and divided by 1000; ``emergency_played``: bulletins_played of priority
  emergency; ``categories``: bulletins_played per bulletin category (category names are data).
- A broadcast belongs to the local (Asia/Ho_Chi_Minh) day it was created.
- A scheduled airing (one item of one occurrence of a slot) counts as a broadcast of its own: targeted
  are the clusters whose pushed window held it, its outcome at a cluster comes from that cluster's
  reports (:func:`airing_outcome`), and it belongs to the local day it was due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

OUTCOMES = ("played", "failed", "missed", "rejected", "stopped")
EMERGENCY = "emergency"
NO_CATEGORY = ""  # stored for bulletins without a category
DEMO_KEYS = ("bulletins_played", "broadcast_seconds", "clusters_played")
DEFAULT_LATE_AFTER_S = 60.0


def to_ms(seconds: float | None) -> int:
    return round(seconds * 1000) if seconds else 0


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery with the report of its outcome (the report whose status is the delivery's state)."""

    broadcast_id: str
    cluster_id: str
    state: str
    played_s: float | None = None
    late_s: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ItemReport:
    """One report an agent sent about a scheduled item."""

    status: str
    reported_at: datetime
    played_s: float | None = None
    late_s: float | None = None
    reason: str | None = None


def airing_outcome(airing_id: str, cluster_id: str, reports: Iterable[ItemReport]) -> DeliveryRow:
    """A scheduled item's outcome at one cluster, from all it reported about it.

    Unlike a broadcast's command, an item may be reported more than once: cut by an emergency
    ('stopped') and then resumed or restarted ('played'). Played to the end at any time wins;
    otherwise the latest outcome stands; no report leaves it targeted but not delivered.
    """
    final = [r for r in reports if r.status in OUTCOMES]
    played = [r for r in final if r.status == "played"]
    if played:
        chosen = min(played, key=lambda r: r.reported_at)
    elif final:
        chosen = max(final, key=lambda r: r.reported_at)
    else:
        return DeliveryRow(airing_id, cluster_id, "queued")
    return DeliveryRow(airing_id, cluster_id, chosen.status, chosen.played_s, chosen.late_s, chosen.reason)


@dataclass
class Counts:
    """Summable delivery counts and milliseconds."""

    targeted: int = 0
    delivered: int = 0
    played: int = 0
    late: int = 0
    failed: int = 0
    missed: int = 0
    rejected: int = 0
    stopped: int = 0
    played_ms: int = 0  # sum of played-to-the-end durations over clusters
    airtime_ms: int = 0  # see the module docstring: max per broadcast, summed over broadcasts

    FIELDS = ("targeted", "delivered", "played", "late", "failed", "missed", "rejected", "stopped")

    def add(self, other: Counts) -> None:
        for name in (*self.FIELDS, "played_ms", "airtime_ms"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def count_delivery(counts: Counts, row: DeliveryRow, late_after_s: float) -> None:
    counts.targeted += 1
    if row.state in OUTCOMES:
        counts.delivered += 1
        setattr(counts, row.state, getattr(counts, row.state) + 1)
    if row.state == "played":
        ms = to_ms(row.played_s)
        counts.played_ms += ms
        counts.airtime_ms = max(counts.airtime_ms, ms)
        if row.late_s is not None and row.late_s > late_after_s:
            counts.late += 1


def per_broadcast_unit(
    rows: Iterable[DeliveryRow], unit_of: Mapping[str, int], late_after_s: float = DEFAULT_LATE_AFTER_S
) -> dict[tuple[str, int], Counts]:
    """Counts per (broadcast, reporting unit); within one, ``airtime_ms`` is the longest play.

    Each (broadcast, cluster) counts once: a second row for the same pair (two reports with the same
    outcome) is ignored. Clusters without a reporting unit are skipped.
    """
    seen: set[tuple[str, str]] = set()
    result: dict[tuple[str, int], Counts] = {}
    for row in rows:
        key = (row.broadcast_id, row.cluster_id)
        unit_id = unit_of.get(row.cluster_id)
        if key in seen or unit_id is None:
            continue
        seen.add(key)
        count_delivery(result.setdefault((row.broadcast_id, unit_id), Counts()), row, late_after_s)
    return result


@dataclass(frozen=True)
class BroadcastMeta:
    day: date
    priority: str
    category: str | None


@dataclass
class UnitDay:
    """A unit's day: summed counts, broadcasts reached, played, emergency, and per-category plays."""

    counts: Counts = field(default_factory=Counts)
    broadcasts: int = 0
    bulletins_played: int = 0
    emergency_played: int = 0
    categories: dict[str, list[int]] = field(default_factory=dict)  # category -> [bulletins_played, airtime_ms]


def per_unit_day(
    broadcast_units: Iterable[tuple[str, int, Counts]], meta: Mapping[str, BroadcastMeta]
) -> dict[tuple[int, date], UnitDay]:
    """Sum (broadcast, unit) counts into (unit, day)."""
    result: dict[tuple[int, date], UnitDay] = {}
    for broadcast_id, unit_id, counts in broadcast_units:
        info = meta[broadcast_id]
        day = result.setdefault((unit_id, info.day), UnitDay())
        day.counts.add(counts)
        day.broadcasts += 1
        if counts.played:
            day.bulletins_played += 1
            if info.priority == EMERGENCY:
                day.emergency_played += 1
            slot = day.categories.setdefault(info.category or NO_CATEGORY, [0, 0])
            slot[0] += 1
            slot[1] += counts.airtime_ms
    return result


@dataclass(frozen=True)
class CommuneFigures:
    """One reporting unit's figures over a period (see the module docstring for each definition)."""

    unit_id: int
    name: str
    clusters: int  # clusters counted under the unit today
    broadcasts: int
    bulletins_played: int
    broadcast_seconds: float
    clusters_played: int
    clusters_targeted: int
    emergency_played: int
    delivered: int
    late: int
    failed: int
    missed: int
    rejected: int
    stopped: int
    cluster_seconds: float  # sum over clusters of what they played to the end
    categories: dict[str, int] = field(default_factory=dict)  # bulletins_played per category ('' = none)

    @property
    def played_share(self) -> float:
        """Share of the clusters sent a bulletin that played it to the end (0.0 when none was sent)."""
        return self.clusters_played / self.clusters_targeted if self.clusters_targeted else 0.0

    @property
    def broadcast_hours(self) -> float:
        return self.broadcast_seconds / 3600

    def demo_dict(self) -> dict[str, Any]:
        """The keys the demo compares with the simulator's ground truth."""
        return {key: getattr(self, key) for key in DEMO_KEYS}

    def as_dict(self) -> dict[str, Any]:
        document = {
            name: getattr(self, name)
            for name in (
                "unit_id",
                "name",
                "clusters",
                "broadcasts",
                "bulletins_played",
                "broadcast_seconds",
                "clusters_played",
                "clusters_targeted",
                "emergency_played",
                "delivered",
                "late",
                "failed",
                "missed",
                "rejected",
                "stopped",
                "cluster_seconds",
            )
        }
        document["played_share"] = self.played_share
        document["categories"] = dict(self.categories)
        return document


@dataclass
class _Acc:
    counts: Counts = field(default_factory=Counts)
    broadcasts: int = 0
    bulletins_played: int = 0
    emergency_played: int = 0
    categories: dict[str, int] = field(default_factory=dict)


def commune_figures_from_days(
    days: Iterable[tuple[int, UnitDay]],
    labels: Mapping[int, str],
    cluster_counts: Mapping[int, int],
) -> list[CommuneFigures]:
    """Sum (unit, UnitDay) pairs over a period; every unit in ``labels`` gets a row, even with zeros."""
    acc: dict[int, _Acc] = {unit_id: _Acc() for unit_id in labels}
    for unit_id, day in days:
        a = acc.setdefault(unit_id, _Acc())
        a.counts.add(day.counts)
        a.broadcasts += day.broadcasts
        a.bulletins_played += day.bulletins_played
        a.emergency_played += day.emergency_played
        for category, (played, _) in day.categories.items():
            a.categories[category] = a.categories.get(category, 0) + played
    return [
        CommuneFigures(
            unit_id=unit_id,
            name=labels.get(unit_id, f"#{unit_id}"),
            clusters=cluster_counts.get(unit_id, 0),
            broadcasts=a.broadcasts,
            bulletins_played=a.bulletins_played,
            broadcast_seconds=a.counts.airtime_ms / 1000,
            clusters_played=a.counts.played,
            clusters_targeted=a.counts.targeted,
            emergency_played=a.emergency_played,
            delivered=a.counts.delivered,
            late=a.counts.late,
            failed=a.counts.failed,
            missed=a.counts.missed,
            rejected=a.counts.rejected,
            stopped=a.counts.stopped,
            cluster_seconds=a.counts.played_ms / 1000,
            categories=dict(sorted(a.categories.items())),
        )
        for unit_id, a in acc.items()
    ]


def total_figures(rows: Iterable[CommuneFigures], name: str = "Tổng cộng") -> CommuneFigures:
    """The sum of several units' figures (unit_id 0)."""
    rows = list(rows)
    categories: dict[str, int] = {}
    for row in rows:
        for category, n in row.categories.items():
            categories[category] = categories.get(category, 0) + n
    summed = {
        key: sum(getattr(r, key) for r in rows)
        for key in (
            "clusters",
            "broadcasts",
            "bulletins_played",
            "clusters_played",
            "clusters_targeted",
            "emergency_played",
            "delivered",
            "late",
            "failed",
            "missed",
            "rejected",
            "stopped",
        )
    }
    # Seconds are summed in milliseconds, so the total is exact too.
    broadcast_ms = sum(round(r.broadcast_seconds * 1000) for r in rows)
    cluster_ms = sum(round(r.cluster_seconds * 1000) for r in rows)
    return CommuneFigures(
        unit_id=0,
        name=name,
        broadcast_seconds=broadcast_ms / 1000,
        cluster_seconds=cluster_ms / 1000,
        categories=dict(sorted(categories.items())),
        **summed,
    )
