"""Statistics on a session: per commune and period (the report's figures), per broadcast, presence by day.

:func:`commune_figures` is *the* statistics code: the quarterly report, the API and the demo's JSON call
it, so they cannot disagree. It reads the rollups (refreshing them first unless told not to);
:func:`commune_figures_raw` computes the same figures from the raw tables, for checks and benchmarks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, case, distinct, exists, func
from sqlmodel import Session, select

from broadcast_server.domain.admin_tree import name_sort_key
from broadcast_server.health.fleet_view import presence_timelines
from broadcast_server.health.presence_timeline import summarize
from broadcast_server.models import (
    Broadcast,
    Cluster,
    PlaybackReport,
    PresenceClusterDay,
    ScheduledAiring,
    ScheduledAiringTarget,
    StatsRollupState,
    StatsUnitDay,
    StatsUnitDayCategory,
)
from broadcast_server.scheduling.airings import is_airing_id
from broadcast_server.statistics.figures import (
    DEFAULT_LATE_AFTER_S,
    CommuneFigures,
    Counts,
    UnitDay,
    commune_figures_from_days,
    count_delivery,
    per_broadcast_unit,
    per_unit_day,
)
from broadcast_server.statistics.grouping import cluster_reporting_units, unit_labels
from broadcast_server.statistics.periods import day_start, days, local_day
from broadcast_server.statistics.rollups import (
    REPORTS_OF_TARGETS,
    airing_meta,
    airing_rows,
    broadcast_meta,
    delivery_rows,
    refresh_rollups,
)


class NotFound(LookupError):
    """The broadcast or scheduled airing asked for does not exist."""


def _units(session: Session) -> tuple[dict[int, str], dict[int, int], dict]:
    unit_of, units = cluster_reporting_units(session)
    cluster_counts = Counter(unit_of.values())
    return unit_labels(units, unit_of.values()), dict(cluster_counts), units


def _ordered(rows: list[CommuneFigures]) -> list[CommuneFigures]:
    return sorted(rows, key=lambda r: (name_sort_key(r.name), r.unit_id))


def commune_figures(session: Session, start: date, end: date, *, refresh: bool = True) -> list[CommuneFigures]:
    """Figures per reporting unit for broadcasts created on local days [start, end), Vietnamese order.

    Every unit that has clusters today gets a row (zeros if nothing happened); a unit that has none
    today but has figures in the period (re-organised away) gets one too. With ``refresh`` the
    rollups are brought up to date first, in the caller's transaction.
    """
    if refresh:
        refresh_rollups(session)
    labels, cluster_counts, units = _units(session)
    names = (*Counts.FIELDS, "played_ms", "airtime_ms")
    summed = [
        func.sum(getattr(StatsUnitDay, n)) for n in (*names, "broadcasts", "bulletins_played", "emergency_played")
    ]
    per_unit: dict[int, UnitDay] = {}
    for unit_id, *values in session.exec(
        select(StatsUnitDay.unit_id, *summed)
        .where(StatsUnitDay.day >= start, StatsUnitDay.day < end)
        .group_by(StatsUnitDay.unit_id)
    ):
        values = [int(v or 0) for v in values]
        per_unit[unit_id] = UnitDay(
            counts=Counts(**dict(zip(names, values[: len(names)], strict=True))),
            broadcasts=values[len(names)],
            bulletins_played=values[len(names) + 1],
            emergency_played=values[len(names) + 2],
        )
    for unit_id, category, played, airtime in session.exec(
        select(
            StatsUnitDayCategory.unit_id,
            StatsUnitDayCategory.category,
            func.sum(StatsUnitDayCategory.bulletins_played),
            func.sum(StatsUnitDayCategory.airtime_ms),
        )
        .where(StatsUnitDayCategory.day >= start, StatsUnitDayCategory.day < end)
        .group_by(StatsUnitDayCategory.unit_id, StatsUnitDayCategory.category)
    ):
        per_unit.setdefault(unit_id, UnitDay()).categories[category] = [int(played or 0), int(airtime or 0)]
    extra = {unit_id for unit_id in per_unit if unit_id not in labels}
    if extra:
        labels = {**labels, **unit_labels(units, extra)}
    return _ordered(commune_figures_from_days(per_unit.items(), labels, cluster_counts))


def commune_figures_raw(
    session: Session,
    start: date,
    end: date,
    *,
    late_after_s: float = DEFAULT_LATE_AFTER_S,
    now: datetime | None = None,
) -> list[CommuneFigures]:
    """The same figures as :func:`commune_figures`, computed from deliveries, pushed windows and reports (slow)."""
    labels, cluster_counts, units = _units(session)
    unit_of, _ = cluster_reporting_units(session)
    ids = list(
        session.exec(
            select(Broadcast.id).where(Broadcast.created_at >= day_start(start), Broadcast.created_at < day_start(end))
        )
    )
    due_before = min(day_start(end), now or datetime.now(UTC))  # airings enter the figures once due
    airing_ids = list(
        session.exec(
            select(ScheduledAiring.id).where(
                ScheduledAiring.start_at >= day_start(start), ScheduledAiring.start_at < due_before
            )
        )
    )
    meta = {**broadcast_meta(session, ids), **airing_meta(session, airing_ids)}
    pairs: list[tuple[str, int, Counts]] = []
    for listed, rows_of in ((ids, delivery_rows), (airing_ids, airing_rows)):
        for i in range(0, len(listed), 50):
            figures = per_broadcast_unit(rows_of(session, listed[i : i + 50]), unit_of, late_after_s)
            pairs.extend((b, u, c) for (b, u), c in figures.items())
    per_day = per_unit_day(pairs, meta)
    extra = {unit_id for unit_id, _ in per_day if unit_id not in labels}
    if extra:
        labels = {**labels, **unit_labels(units, extra)}
    return _ordered(commune_figures_from_days(((u, d) for (u, _), d in per_day.items()), labels, cluster_counts))


@dataclass(frozen=True)
class BroadcastFigures:
    broadcast_id: str
    counts: Counts
    pending: int  # queued or sent: no outcome yet
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)  # state -> reason -> clusters
    communes: list[tuple[str, Counts]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "broadcast_id": self.broadcast_id,
            **{n: getattr(self.counts, n) for n in Counts.FIELDS},
            "pending": self.pending,
            "played_seconds": self.counts.played_ms / 1000,
            "reasons": self.reasons,
            "communes": [
                {"name": name, **{n: getattr(c, n) for n in Counts.FIELDS}, "airtime_seconds": c.airtime_ms / 1000}
                for name, c in self.communes
            ],
        }


def broadcast_figures(
    session: Session,
    broadcast_id: str,
    *,
    late_after_s: float = DEFAULT_LATE_AFTER_S,
    only_clusters: set[str] | None = None,
) -> BroadcastFigures:
    """Targeted, delivered, played, late, failed, missed (and rejected, stopped) with reasons, per commune.

    Also for a scheduled airing ('<slot>@<start>#<item>'): the clusters sent it in their windows, and the
    outcome each reported. `only_clusters` narrows the figures to those clusters (an account's scope).
    """
    if is_airing_id(broadcast_id):
        if session.get(ScheduledAiring, broadcast_id) is None:
            raise NotFound(f"scheduled airing {broadcast_id!r} does not exist")
        rows = airing_rows(session, [broadcast_id])
    else:
        if session.get(Broadcast, broadcast_id) is None:
            raise NotFound(f"broadcast {broadcast_id!r} does not exist")
        rows = delivery_rows(session, [broadcast_id])
    if only_clusters is not None:
        rows = [r for r in rows if r.cluster_id in only_clusters]
    unit_of, units = cluster_reporting_units(session)
    total = Counts()
    reasons: dict[str, Counter] = defaultdict(Counter)
    seen: set[str] = set()
    for row in rows:
        if row.cluster_id in seen:
            continue
        seen.add(row.cluster_id)
        count_delivery(total, row, late_after_s)
        if row.state in ("failed", "missed", "rejected", "stopped"):
            reasons[row.state][row.reason or "(không rõ lý do)"] += 1
    per_unit = per_broadcast_unit(rows, unit_of, late_after_s)
    labels = unit_labels(units, [u for _, u in per_unit])
    communes = sorted(((labels[u], c) for (_, u), c in per_unit.items()), key=lambda nc: name_sort_key(nc[0]))
    return BroadcastFigures(
        broadcast_id=broadcast_id,
        counts=total,
        pending=total.targeted - total.delivered,
        reasons={state: dict(counter.most_common()) for state, counter in sorted(reasons.items())},
        communes=communes,
    )


@dataclass(frozen=True)
class AiringSummary:
    """A scheduled airing already due: clusters sent it, and those that played it to the end."""

    id: str
    title: str
    start_at: datetime
    priority: str
    targeted: int
    played: int


def recent_airings(
    session: Session, now: datetime, *, unit_ids: set[int] | None = None, limit: int = 50
) -> list[AiringSummary]:
    """Scheduled airings due by `now`, newest first; counted over the clusters of `unit_ids` (None: all).

    Played is counted as the statistics count it: a cluster that reported it played to the end at any time.
    """
    # The page's airings first (newest due, walking the start_at index), then counts for those alone: a
    # year of a province holds millions of targets, and grouping all of them to keep 50 costs a page load.
    in_scope = ScheduledAiringTarget.airing_id == ScheduledAiring.id
    if unit_ids is not None:
        in_scope = and_(
            in_scope,
            ScheduledAiringTarget.cluster_id == Cluster.id,
            Cluster.unit_id.in_(sorted(unit_ids)),  # type: ignore[attr-defined]
        )
    ids = list(
        session.exec(
            select(ScheduledAiring.id)
            .where(ScheduledAiring.start_at <= now, exists().where(in_scope))
            .order_by(ScheduledAiring.start_at.desc(), ScheduledAiring.id)  # type: ignore[attr-defined]
            .limit(limit)
        )
    )
    if not ids:
        return []
    played = func.count(distinct(case((PlaybackReport.status == "played", ScheduledAiringTarget.cluster_id))))
    query = (
        select(
            ScheduledAiring.id,
            ScheduledAiring.title,
            ScheduledAiring.start_at,
            ScheduledAiring.priority,
            func.count(distinct(ScheduledAiringTarget.cluster_id)),
            played,
        )
        .join(ScheduledAiringTarget, ScheduledAiringTarget.airing_id == ScheduledAiring.id)  # type: ignore[arg-type]
        .join(PlaybackReport, REPORTS_OF_TARGETS, isouter=True)
        .where(ScheduledAiring.id.in_(ids))  # type: ignore[attr-defined]
        .group_by(ScheduledAiring.id, ScheduledAiring.title, ScheduledAiring.start_at, ScheduledAiring.priority)
        .order_by(ScheduledAiring.start_at.desc(), ScheduledAiring.id)  # type: ignore[attr-defined]
    )
    if unit_ids is not None:
        query = query.join(Cluster, Cluster.id == ScheduledAiringTarget.cluster_id).where(  # type: ignore[arg-type]
            Cluster.unit_id.in_(sorted(unit_ids))  # type: ignore[attr-defined]
        )
    return [AiringSummary(*row) for row in session.exec(query)]


def online_share_by_day(
    session: Session, start: date, end: date, *, now: datetime | None = None, refresh: bool = True
) -> list[tuple[date, float | None]]:
    """Share of all clusters online, averaged over each local day of [start, end); None for future days.

    Complete days come from ``presence_cluster_day``; today (if inside) is computed from the events.
    """
    from broadcast_server.statistics.rollups import refresh_presence_rollups

    now = now or datetime.now(UTC)
    today = local_day(now)
    if refresh:
        refresh_presence_rollups(session, today)
    rolled_until = session.exec(select(StatsRollupState.presence_until)).first()
    sums = {
        day: (total_ms, count)
        for day, total_ms, count in session.exec(
            select(PresenceClusterDay.day, func.sum(PresenceClusterDay.online_ms), func.count())
            .where(PresenceClusterDay.day >= start, PresenceClusterDay.day < end)
            .group_by(PresenceClusterDay.day)
        )
    }
    series: list[tuple[date, float | None]] = []
    for day in days(start, end):
        if day in sums and (rolled_until is None or day <= rolled_until):
            total_ms, count = sums[day]
            length_ms = (day_start(day + timedelta(days=1)) - day_start(day)).total_seconds() * 1000
            series.append((day, float(total_ms) / (count * length_ms) if count else None))
        elif day == today:
            timelines = presence_timelines(session, day_start(day), now)
            if timelines:
                shares = [summarize(i, e, day_start(day), now).uptime for i, e in timelines.values()]
                series.append((day, sum(shares) / len(shares)))
            else:
                series.append((day, None))
        else:
            series.append((day, None))
    return series


__all__ = [
    "AiringSummary",
    "BroadcastFigures",
    "CommuneFigures",
    "NotFound",
    "broadcast_figures",
    "commune_figures",
    "commune_figures_raw",
    "online_share_by_day",
    "recent_airings",
]
