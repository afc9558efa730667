"""What technicians look at: offline clusters per commune, flapping, uptime, amplifiers faulty or held off,
clocks off."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func
from sqlmodel import Session, select

from broadcast_server.domain.admin_tree import name_sort_key
from broadcast_server.health.presence_timeline import Transition, summarize
from broadcast_server.models import Cluster, ClusterState, PresenceEvent
from broadcast_server.statistics.grouping import cluster_reporting_units, unit_labels
from mqtt_contract.signing import NO_TRUSTED_KEY

FLAPPING_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class OfflineCluster:
    cluster_id: str
    since: datetime | None  # None: never connected
    last_seen_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    cause: str | None
    drops_7d: int


@dataclass(frozen=True)
class CommuneHealth:
    unit_id: int
    name: str
    clusters: int
    online: int
    offline: tuple[OfflineCluster, ...]

    @property
    def online_share(self) -> float:
        return self.online / self.clusters if self.clusters else 0.0


@dataclass(frozen=True)
class ClusterNote:
    """A cluster listed for a reason other than being offline (amplifier fault, no server key, clock off, flapping)."""

    cluster_id: str
    commune: str
    online: bool
    detail: str
    value: float | int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class FleetStatus:
    at: datetime
    clusters: int
    online: int
    communes: tuple[CommuneHealth, ...]  # every commune, Vietnamese order; offline clusters inside
    faulty_amplifiers: tuple[ClusterNote, ...]
    amplifiers_off: tuple[ClusterNote, ...]  # held off by a technician's command: they play nothing
    refusing_commands: tuple[ClusterNote, ...]  # agents that know no server key (not enrolled): obey nothing
    clock_off: tuple[ClusterNote, ...]
    flapping: tuple[ClusterNote, ...]  # clusters with at least ``flapping_min_drops`` drops in 7 days
    clock_offset_threshold_s: float
    flapping_min_drops: int = 3
    extra: dict = field(default_factory=dict)


def drops_since(session: Session, since: datetime, cluster_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Online-to-offline changes per cluster since ``since`` (reconnects included)."""
    query = (
        select(PresenceEvent.cluster_id, func.count())
        .where(PresenceEvent.online.is_(False), PresenceEvent.at >= since)  # type: ignore[attr-defined]
        .group_by(PresenceEvent.cluster_id)
    )
    if cluster_ids is not None:
        query = query.where(PresenceEvent.cluster_id.in_(list(cluster_ids)))  # type: ignore[attr-defined]
    return dict(session.exec(query).all())  # type: ignore[arg-type]


def fleet_status(
    session: Session,
    now: datetime,
    *,
    clock_offset_threshold_s: float = 5.0,
    flapping_min_drops: int = 3,
) -> FleetStatus:
    unit_of, units = cluster_reporting_units(session)
    labels = unit_labels(units, unit_of.values())
    states = {s.cluster_id: s for s in session.exec(select(ClusterState))}
    drops = drops_since(session, now - FLAPPING_WINDOW)
    members: dict[int, list[str]] = defaultdict(list)
    for cluster_id, unit_id in unit_of.items():
        members[unit_id].append(cluster_id)
    communes = []
    for unit_id, cluster_ids in members.items():
        offline = []
        online = 0
        for cluster_id in sorted(cluster_ids, key=name_sort_key):
            state = states.get(cluster_id)
            if state is not None and state.online:
                online += 1
                continue
            offline.append(
                OfflineCluster(
                    cluster_id=cluster_id,
                    since=state.changed_at if state else None,
                    last_seen_at=state.last_seen_at if state else None,
                    last_error=state.last_error if state else None,
                    last_error_at=state.last_error_at if state else None,
                    cause=state.cause if state else None,
                    drops_7d=drops.get(cluster_id, 0),
                )
            )
        offline.sort(key=lambda o: (o.since is None, o.since or now, name_sort_key(o.cluster_id)))
        communes.append(CommuneHealth(unit_id, labels[unit_id], len(cluster_ids), online, tuple(offline)))
    communes.sort(key=lambda c: name_sort_key(c.name))
    commune_name = {c: labels[u] for c, u in unit_of.items()}
    by_name = sorted(states.values(), key=lambda s: name_sort_key(s.cluster_id))

    def amplifier(value: str, detail: str) -> tuple[ClusterNote, ...]:
        return tuple(
            ClusterNote(s.cluster_id, commune_name[s.cluster_id], s.online, detail, None, s.last_seen_at)
            for s in by_name
            if s.amplifier == value and s.cluster_id in commune_name
        )

    refusing = tuple(
        ClusterNote(s.cluster_id, commune_name[s.cluster_id], s.online, NO_TRUSTED_KEY, None, s.last_error_at)
        for s in by_name
        if s.last_error and NO_TRUSTED_KEY in s.last_error and s.cluster_id in commune_name
    )
    clock_off = tuple(
        ClusterNote(s.cluster_id, commune_name.get(s.cluster_id, "?"), s.online, "clock offset", s.clock_offset_s)
        for s in sorted(states.values(), key=lambda s: -abs(s.clock_offset_s or 0))
        if s.clock_offset_s is not None and abs(s.clock_offset_s) > clock_offset_threshold_s
    )
    flapping = tuple(
        ClusterNote(c, commune_name.get(c, "?"), bool(states.get(c) and states[c].online), "drops in 7 days", n)
        for c, n in sorted(drops.items(), key=lambda kv: (-kv[1], name_sort_key(kv[0])))
        if n >= flapping_min_drops and c in commune_name
    )
    return FleetStatus(
        at=now,
        clusters=len(unit_of),
        online=sum(c.online for c in communes),
        communes=tuple(communes),
        faulty_amplifiers=amplifier("fault", "amplifier fault"),
        amplifiers_off=amplifier("off", "amplifier held off"),
        refusing_commands=refusing,
        clock_off=clock_off,
        flapping=flapping,
        clock_offset_threshold_s=clock_offset_threshold_s,
        flapping_min_drops=flapping_min_drops,
    )


@dataclass(frozen=True)
class ClusterUptime:
    cluster_id: str
    commune: str
    online_s: float
    drops: int
    length_s: float

    @property
    def uptime(self) -> float:
        return self.online_s / self.length_s if self.length_s > 0 else 0.0


def presence_timelines(
    session: Session, start: datetime, end: datetime, cluster_ids: Iterable[str] | None = None
) -> dict[str, tuple[bool, list[Transition]]]:
    """Per cluster: the presence at ``start`` and the transitions in [start, end), from ``presence_event``.

    The presence at ``start`` is that of the last event before it. A cluster with no event before
    ``start`` counts as offline then, unless the first event inside the window takes it offline
    (history recorded before presence events existed).
    """
    ids = list(cluster_ids) if cluster_ids is not None else list(session.exec(select(Cluster.id)))
    last_before = (
        select(PresenceEvent.cluster_id, func.max(PresenceEvent.at).label("at"))
        .where(PresenceEvent.at < start)
        .group_by(PresenceEvent.cluster_id)
        .subquery()
    )
    initial: dict[str, bool] = {}
    rows = session.exec(
        select(PresenceEvent.cluster_id, PresenceEvent.online, PresenceEvent.id)
        .join(
            last_before,
            and_(last_before.c.cluster_id == PresenceEvent.cluster_id, last_before.c.at == PresenceEvent.at),
        )
        .order_by(PresenceEvent.id)  # type: ignore[arg-type]
    ).all()
    for cluster_id, online, _ in rows:  # the same instant twice (a reconnect): the later id wins
        initial[cluster_id] = online
    inside: dict[str, list[Transition]] = defaultdict(list)
    for cluster_id, at, online, cause in session.exec(
        select(PresenceEvent.cluster_id, PresenceEvent.at, PresenceEvent.online, PresenceEvent.cause)
        .where(PresenceEvent.at >= start, PresenceEvent.at < end)
        .order_by(PresenceEvent.at, PresenceEvent.id)  # type: ignore[arg-type]
    ):
        inside[cluster_id].append(Transition(at, online, cause))
    wanted = set(ids)
    result = {}
    for cluster_id in ids:
        events = inside.get(cluster_id, [])
        if cluster_id in initial:
            start_online = initial[cluster_id]
        else:
            start_online = bool(events) and not events[0].online
        result[cluster_id] = (start_online, events)
    return {c: v for c, v in result.items() if c in wanted}


def uptime(session: Session, start: datetime, end: datetime, now: datetime | None = None) -> list[ClusterUptime]:
    """Uptime and drops of every cluster over [start, min(end, now)), in commune then cluster order."""
    until = min(end, now) if now is not None else end
    unit_of, units = cluster_reporting_units(session)
    labels = unit_labels(units, unit_of.values())
    timelines = presence_timelines(session, start, until, unit_of)
    rows = []
    for cluster_id, (initial, events) in timelines.items():
        summary = summarize(initial, events, start, until)
        rows.append(
            ClusterUptime(cluster_id, labels[unit_of[cluster_id]], summary.online_s, summary.drops, summary.length_s)
        )
    rows.sort(key=lambda r: (name_sort_key(r.commune), name_sort_key(r.cluster_id)))
    return rows
