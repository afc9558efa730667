"""Scheduled airings as facts for the statistics: which item of which occurrence each cluster was sent.

A broadcast leaves a delivery row per cluster; a schedule is pushed as windows, so this records, per
pushed window, one ``scheduled_airing`` per item of each occurrence (its id is what the agent's reports
name) and one ``scheduled_airing_target`` per cluster sent it. A new window replaces the old one on the
agent: airings still to come that the new window no longer holds (a slot cancelled, a target narrowed)
stop counting as sent to that cluster. Airings already due stay: they are what was asked of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, insert, tuple_
from sqlmodel import Session, select

from broadcast_server.models import ScheduledAiring, ScheduledAiringTarget
from broadcast_server.scheduling.windows import ResolvedSlot
from speaker_agent.playout import Entry
from speaker_agent.playout.plan import item_order
from speaker_agent.playout.runner import item_command_id

CHUNK = 500


@dataclass(frozen=True)
class Airing:
    id: str
    slot_id: str
    position: int
    bulletin_id: str
    title: str
    priority: str
    start_at: datetime


def is_airing_id(command_id: str) -> bool:
    """Whether a report's command id names a scheduled item ('<slot>@<start>#<item>'), not a broadcast's."""
    return "@" in command_id and "#" in command_id


def slot_airings(slot: ResolvedSlot, entries: Iterable[Entry]) -> list[Airing]:
    """One airing per item of each of the slot's entries, numbered in play order (priority items first) as
    the agent numbers them in its reports; none for a slot whose bulletins are not known."""
    if len(slot.bulletin_ids) != len(slot.items):
        return []
    order = item_order(slot.items)
    return [
        Airing(
            item_command_id((entry.id, i)),
            slot.id,
            i,
            slot.bulletin_ids[k],
            slot.items[k].title,
            slot.items[k].priority,
            entry.start_at,
        )
        for entry in entries
        for i, k in enumerate(order)
    ]


def record_windows(
    session: Session, windows: Mapping[str, Sequence[Airing]], window_start: datetime, now: datetime
) -> None:
    """Store what each cluster's new window holds (``windows``: cluster id -> its airings).

    The window covers airings from ``window_start``; of the cluster's earlier targets in that range, those
    due from ``now`` on and missing from the new window are removed.
    """
    airings = {a.id: a for listed in windows.values() for a in listed}
    _store_airings(session, airings)
    cluster_ids = list(windows)
    for start in range(0, len(cluster_ids), CHUNK):
        chunk = cluster_ids[start : start + CHUNK]
        existing = session.exec(
            select(ScheduledAiringTarget.airing_id, ScheduledAiringTarget.cluster_id, ScheduledAiring.start_at)
            .join(ScheduledAiring, ScheduledAiring.id == ScheduledAiringTarget.airing_id)  # type: ignore[arg-type]
            .where(
                ScheduledAiringTarget.cluster_id.in_(chunk),  # type: ignore[attr-defined]
                ScheduledAiring.start_at >= window_start,
            )
        ).all()
        have = {(airing_id, cluster_id) for airing_id, cluster_id, _ in existing}
        wanted = {(a.id, cluster_id) for cluster_id in chunk for a in windows[cluster_id]}
        stale = [
            (airing_id, cluster_id)
            for airing_id, cluster_id, start_at in existing
            if start_at >= now and (airing_id, cluster_id) not in wanted
        ]
        for part in range(0, len(stale), CHUNK):
            session.exec(
                delete(ScheduledAiringTarget).where(
                    tuple_(ScheduledAiringTarget.airing_id, ScheduledAiringTarget.cluster_id).in_(  # type: ignore[arg-type]
                        stale[part : part + CHUNK]
                    )
                )
            )
        new = sorted(wanted - have)
        if new:
            session.exec(  # type: ignore[call-overload]
                insert(ScheduledAiringTarget), params=[{"airing_id": a, "cluster_id": c} for a, c in new]
            )


def _store_airings(session: Session, airings: Mapping[str, Airing]) -> None:
    """Insert airings not stored yet; an airing whose item changed (programme edited) is brought up to date."""
    ids = sorted(airings)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        stored = {a.id: a for a in session.exec(select(ScheduledAiring).where(ScheduledAiring.id.in_(chunk)))}  # type: ignore[attr-defined]
        new = []
        for airing_id in chunk:
            airing = airings[airing_id]
            row = stored.get(airing_id)
            if row is None:
                new.append(asdict(airing))
            elif (row.bulletin_id, row.title, row.priority) != (airing.bulletin_id, airing.title, airing.priority):
                row.bulletin_id, row.title, row.priority = airing.bulletin_id, airing.title, airing.priority
                session.add(row)
        if new:
            session.exec(insert(ScheduledAiring), params=new)  # type: ignore[call-overload]
    session.flush()
