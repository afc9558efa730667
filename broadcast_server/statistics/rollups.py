"""The rollup job: keeps ``stats_broadcast_unit``, ``stats_airing_unit``, ``stats_unit_day(_category)`` and
``presence_cluster_day``.

Statistics rollups are recomputed from the raw tables for the broadcasts and scheduled airings that need
it: broadcasts created and airings due since the last run (with an hour of overlap, for transactions that
committed late) and those ingest marked dirty because a report changed an outcome. Re-running is always
safe: rows are replaced, never incremented. Presence rollups cover complete local days only; days already
rolled are final unless ``refresh_presence_rollups(since=...)`` is asked to redo them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, delete, func, insert
from sqlmodel import Session, select

from broadcast_server.health.presence_timeline import Transition, summarize
from broadcast_server.models import (
    Broadcast,
    Bulletin,
    Cluster,
    Delivery,
    PlaybackReport,
    PresenceClusterDay,
    PresenceEvent,
    ScheduledAiring,
    ScheduledAiringTarget,
    StatsAiringUnit,
    StatsBroadcastUnit,
    StatsDirtyBroadcast,
    StatsRollupState,
    StatsUnitDay,
    StatsUnitDayCategory,
)
from broadcast_server.scheduling.airings import is_airing_id
from broadcast_server.statistics.figures import (
    DEFAULT_LATE_AFTER_S,
    BroadcastMeta,
    Counts,
    DeliveryRow,
    ItemReport,
    airing_outcome,
    per_broadcast_unit,
    per_unit_day,
)
from broadcast_server.statistics.grouping import cluster_reporting_units
from broadcast_server.statistics.periods import day_start, local_day

OVERLAP = timedelta(hours=1)
CHUNK = 500
BROADCASTS_PER_READ = 50  # a broadcast may reach 10,000 clusters: keep one read of deliveries bounded


@dataclass(frozen=True)
class RefreshResult:
    broadcasts: int
    unit_days: int


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _state(session: Session) -> StatsRollupState:
    state = session.get(StatsRollupState, 1)
    if state is None:
        state = StatsRollupState(id=1)
        session.add(state)
    return state


def broadcast_meta(session: Session, broadcast_ids: Iterable[str]) -> dict[str, BroadcastMeta]:
    meta: dict[str, BroadcastMeta] = {}
    for chunk in _chunks(list(broadcast_ids)):
        for broadcast_id, created_at, priority, category in session.exec(
            select(Broadcast.id, Broadcast.created_at, Broadcast.priority, Bulletin.category)
            .join(Bulletin, Bulletin.id == Broadcast.bulletin_id)  # type: ignore[arg-type]
            .where(Broadcast.id.in_(chunk))  # type: ignore[attr-defined]
        ):
            meta[broadcast_id] = BroadcastMeta(local_day(created_at), priority, category)
    return meta


def delivery_rows(session: Session, broadcast_ids: Sequence[str]) -> list[DeliveryRow]:
    """Deliveries of some broadcasts, each with the report of its outcome (if any)."""
    rows = session.exec(
        select(
            Delivery.broadcast_id,
            Delivery.cluster_id,
            Delivery.state,
            PlaybackReport.played_s,
            PlaybackReport.late_s,
            PlaybackReport.reason,
        )
        .join(
            PlaybackReport,
            and_(
                PlaybackReport.command_id == Delivery.command_id,
                PlaybackReport.cluster_id == Delivery.cluster_id,
                PlaybackReport.status == Delivery.state,
            ),
            isouter=True,
        )
        .where(Delivery.broadcast_id.in_(broadcast_ids))  # type: ignore[attr-defined]
    ).all()
    return [DeliveryRow(*row) for row in rows]


def airing_meta(session: Session, airing_ids: Iterable[str]) -> dict[str, BroadcastMeta]:
    """Day due, priority and category of scheduled airings, as :func:`broadcast_meta` gives for broadcasts."""
    meta: dict[str, BroadcastMeta] = {}
    for chunk in _chunks(list(airing_ids)):
        for airing_id, start_at, priority, category in session.exec(
            select(ScheduledAiring.id, ScheduledAiring.start_at, ScheduledAiring.priority, Bulletin.category)
            .join(Bulletin, Bulletin.id == ScheduledAiring.bulletin_id)  # type: ignore[arg-type]
            .where(ScheduledAiring.id.in_(chunk))  # type: ignore[attr-defined]
        ):
            meta[airing_id] = BroadcastMeta(local_day(start_at), priority, category)
    return meta


# A target's reports: what the cluster sent it said of the airing.
REPORTS_OF_TARGETS = and_(
    PlaybackReport.command_id == ScheduledAiringTarget.airing_id,
    PlaybackReport.cluster_id == ScheduledAiringTarget.cluster_id,
)


def airing_rows(session: Session, airing_ids: Sequence[str]) -> list[DeliveryRow]:
    """Each cluster sent one of these airings, with its outcome folded from all it reported."""
    reports: dict[tuple[str, str], list[ItemReport]] = {}
    for airing_id, cluster_id, status, reported_at, played_s, late_s, reason in session.exec(
        select(
            ScheduledAiringTarget.airing_id,
            ScheduledAiringTarget.cluster_id,
            PlaybackReport.status,
            PlaybackReport.reported_at,
            PlaybackReport.played_s,
            PlaybackReport.late_s,
            PlaybackReport.reason,
        )
        .join(PlaybackReport, REPORTS_OF_TARGETS, isouter=True)
        .where(ScheduledAiringTarget.airing_id.in_(airing_ids))  # type: ignore[attr-defined]
    ):
        listed = reports.setdefault((airing_id, cluster_id), [])
        if status is not None:
            listed.append(ItemReport(status, reported_at, played_s, late_s, reason))
    return [airing_outcome(airing_id, cluster_id, found) for (airing_id, cluster_id), found in reports.items()]


@dataclass(frozen=True)
class _Kind:
    """What is rolled up into per-unit rows: broadcasts (deliveries) or scheduled airings (pushed windows)."""

    table: type[StatsBroadcastUnit] | type[StatsAiringUnit]
    key: str  # the table's id column
    meta: Callable[[Session, Sequence[str]], dict[str, BroadcastMeta]]
    rows: Callable[[Session, Sequence[str]], list[DeliveryRow]]


BROADCASTS = _Kind(StatsBroadcastUnit, "broadcast_id", broadcast_meta, delivery_rows)
AIRINGS = _Kind(StatsAiringUnit, "airing_id", airing_meta, airing_rows)


def refresh_rollups(
    session: Session, now: datetime | None = None, *, late_after_s: float = DEFAULT_LATE_AFTER_S, full: bool = False
) -> RefreshResult:
    """Bring the statistics rollups up to date (in the caller's transaction).

    Broadcasts count from their creation; scheduled airings from their due time, and not before it: an
    airing pushed ahead of time enters the figures once it was due to play.
    """
    now = now or datetime.now(UTC)
    state = _state(session)
    query = select(Broadcast.id)
    airings = select(ScheduledAiring.id).where(ScheduledAiring.start_at <= now)
    if state.broadcasts_until is not None and not full:
        query = query.where(Broadcast.created_at >= state.broadcasts_until - OVERLAP)
        airings = airings.where(ScheduledAiring.start_at >= state.broadcasts_until - OVERLAP)
    ids = set(session.exec(query))
    airing_ids = set(session.exec(airings))
    dirty = list(session.exec(select(StatsDirtyBroadcast.broadcast_id, StatsDirtyBroadcast.marked_at)))
    ids.update(b for b, _ in dirty if not is_airing_id(b))
    dirty_airings = [a for a, _ in dirty if is_airing_id(a)]
    for chunk in _chunks(dirty_airings):
        airing_ids.update(
            session.exec(
                select(ScheduledAiring.id).where(ScheduledAiring.id.in_(chunk), ScheduledAiring.start_at <= now)  # type: ignore[attr-defined]
            )
        )
    unit_days = rebuild_outcomes(session, sorted(ids), sorted(airing_ids), late_after_s=late_after_s)
    for chunk in _chunks([b for b, _ in dirty]):
        # Only what we read: a mark ingest set after our read stays for the next run.
        marked = {b: at for b, at in dirty if b in set(chunk)}
        session.exec(
            delete(StatsDirtyBroadcast).where(
                StatsDirtyBroadcast.broadcast_id.in_(chunk),  # type: ignore[attr-defined]
                StatsDirtyBroadcast.marked_at <= max(marked.values()),  # type: ignore[arg-type]
            )
        )
    state.broadcasts_until = now
    session.add(state)
    session.flush()
    return RefreshResult(len(ids) + len(airing_ids), unit_days)


def rebuild_outcomes(
    session: Session,
    broadcast_ids: Sequence[str],
    airing_ids: Sequence[str] = (),
    *,
    late_after_s: float = DEFAULT_LATE_AFTER_S,
) -> int:
    """Recompute the rollup rows of these broadcasts and scheduled airings and of every (unit, day) they touch."""
    if not broadcast_ids and not airing_ids:
        return 0
    unit_of, _ = cluster_reporting_units(session)
    days: set[date] = set()
    for kind, ids in ((BROADCASTS, broadcast_ids), (AIRINGS, airing_ids)):
        key = getattr(kind.table, kind.key)
        for chunk in _chunks(list(ids), BROADCASTS_PER_READ):
            days.update(session.exec(select(kind.table.day).where(key.in_(chunk)).distinct()))
            meta = kind.meta(session, chunk)
            days.update(m.day for m in meta.values())
            figures = per_broadcast_unit(kind.rows(session, chunk), unit_of, late_after_s)
            session.exec(delete(kind.table).where(key.in_(chunk)))
            values = [_unit_values(kind.key, b, u, c, meta[b]) for (b, u), c in figures.items()]
            if values:
                session.exec(insert(kind.table), params=values)  # type: ignore[call-overload]
    return rebuild_unit_days(session, sorted(days))


def _unit_values(key: str, item_id: str, unit_id: int, c: Counts, meta: BroadcastMeta) -> dict:
    return {
        key: item_id,
        "unit_id": unit_id,
        "day": meta.day,
        "category": meta.category,
        "priority": meta.priority,
        **{name: getattr(c, name) for name in (*Counts.FIELDS, "played_ms", "airtime_ms")},
    }


def rebuild_unit_days(session: Session, days: Sequence[date]) -> int:
    """Recompute ``stats_unit_day`` and its categories for whole days, from the per-unit rows of both kinds."""
    written = 0
    for chunk in _chunks(list(days), 31):
        rows = [
            (getattr(r, kind.key), r)
            for kind in (BROADCASTS, AIRINGS)
            for r in session.exec(select(kind.table).where(kind.table.day.in_(chunk)))  # type: ignore[attr-defined]
        ]
        meta = {item_id: BroadcastMeta(r.day, r.priority, r.category) for item_id, r in rows}
        per_day = per_unit_day(
            ((item_id, r.unit_id, Counts(**{n: getattr(r, n) for n in _COUNT_NAMES})) for item_id, r in rows), meta
        )
        session.exec(delete(StatsUnitDay).where(StatsUnitDay.day.in_(chunk)))  # type: ignore[attr-defined]
        session.exec(delete(StatsUnitDayCategory).where(StatsUnitDayCategory.day.in_(chunk)))  # type: ignore[attr-defined]
        day_values = []
        category_values = []
        for (unit_id, day), d in per_day.items():
            day_values.append(
                {
                    "unit_id": unit_id,
                    "day": day,
                    "broadcasts": d.broadcasts,
                    "bulletins_played": d.bulletins_played,
                    "emergency_played": d.emergency_played,
                    **{n: getattr(d.counts, n) for n in _COUNT_NAMES},
                }
            )
            for category, (played, airtime) in d.categories.items():
                category_values.append(
                    {
                        "unit_id": unit_id,
                        "day": day,
                        "category": category,
                        "bulletins_played": played,
                        "airtime_ms": airtime,
                    }
                )
        if day_values:
            session.exec(insert(StatsUnitDay), params=day_values)  # type: ignore[call-overload]
        if category_values:
            session.exec(insert(StatsUnitDayCategory), params=category_values)  # type: ignore[call-overload]
        written += len(day_values)
    return written


_COUNT_NAMES = (*Counts.FIELDS, "played_ms", "airtime_ms")


# --------------------------------------------------------------------------------------- presence


def refresh_presence_rollups(
    session: Session, today: date | None = None, *, since: date | None = None, max_days: int = 400
) -> int:
    """Roll complete local days (before ``today``) of presence into ``presence_cluster_day``.

    Starts the day after the last rolled one, or at ``since`` to redo days (e.g. after a backfill).
    Returns the number of days rolled.
    """
    today = today or local_day(datetime.now(UTC))
    state = _state(session)
    if since is not None:
        first = since
    elif state.presence_until is not None:
        first = state.presence_until + timedelta(days=1)
    else:
        earliest = session.exec(select(func.min(PresenceEvent.at))).one()
        if earliest is None:
            return 0
        first = local_day(earliest)
    cluster_ids = list(session.exec(select(Cluster.id)))
    rolled = 0
    day = first
    previous: dict[str, bool] | None = None
    while day < today and rolled < max_days:
        previous = _roll_presence_day(session, day, cluster_ids, previous)
        state.presence_until = day
        rolled += 1
        day += timedelta(days=1)
    session.add(state)
    session.flush()
    return rolled


def _roll_presence_day(
    session: Session, day: date, cluster_ids: list[str], previous: dict[str, bool] | None
) -> dict[str, bool]:
    from broadcast_server.health.fleet_view import presence_timelines

    start, end = day_start(day), day_start(day + timedelta(days=1))
    if previous is None:
        before = {
            c: online
            for c, online in session.exec(
                select(PresenceClusterDay.cluster_id, PresenceClusterDay.online_at_end).where(
                    PresenceClusterDay.day == day - timedelta(days=1)
                )
            )
        }
        timelines = presence_timelines(session, start, end, cluster_ids)
        initial = {c: before.get(c, timelines[c][0]) for c in cluster_ids}
        events = {c: timelines[c][1] for c in cluster_ids}
    else:
        initial = previous
        events = {}
        for cluster_id, at, online, cause in session.exec(
            select(PresenceEvent.cluster_id, PresenceEvent.at, PresenceEvent.online, PresenceEvent.cause)
            .where(PresenceEvent.at >= start, PresenceEvent.at < end)
            .order_by(PresenceEvent.at, PresenceEvent.id)  # type: ignore[arg-type]
        ):
            events.setdefault(cluster_id, []).append(Transition(at, online, cause))
    session.exec(delete(PresenceClusterDay).where(PresenceClusterDay.day == day))  # type: ignore[arg-type]
    values = []
    at_end: dict[str, bool] = {}
    for cluster_id in cluster_ids:
        summary = summarize(initial.get(cluster_id, False), events.get(cluster_id, []), start, end)
        at_end[cluster_id] = summary.online_at_end
        values.append(
            {
                "cluster_id": cluster_id,
                "day": day,
                "online_ms": round(summary.online_s * 1000),
                "drops": summary.drops,
                "online_at_end": summary.online_at_end,
            }
        )
    if values:
        session.exec(insert(PresenceClusterDay), params=values)  # type: ignore[call-overload]
    return at_end
