"""How many clusters an emergency will reach and interrupt: online ones, those playing something now, and
those a technician holds silent (amplifier off)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from broadcast_server.models import ClusterState, Heartbeat

CHUNK = 500


@dataclass(frozen=True)
class Interruption:
    targeted: int
    online: int
    playing: int  # online, and their latest heartbeat (still fresh) says they are playing something
    held_off: int = 0  # their amplifier held off by a technician's command: they will not play it


def interruption_estimate(
    session: Session, cluster_ids: Iterable[str], now: datetime, *, heartbeat_interval_s: float
) -> Interruption:
    ids = sorted(set(cluster_ids))
    online: set[str] = set()
    playing = held_off = 0
    fresh_after = now - timedelta(seconds=3 * heartbeat_interval_s)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for cluster_id, is_online, amplifier in session.exec(
            select(ClusterState.cluster_id, ClusterState.online, ClusterState.amplifier).where(
                ClusterState.cluster_id.in_(chunk)  # type: ignore[attr-defined]
            )
        ):
            if is_online:
                online.add(cluster_id)
            held_off += amplifier == "off"
        latest = (
            select(func.max(Heartbeat.id))
            .where(Heartbeat.cluster_id.in_(chunk))  # type: ignore[attr-defined]
            .group_by(Heartbeat.cluster_id)
        )
        for cluster_id, what, received in session.exec(
            select(Heartbeat.cluster_id, Heartbeat.playing, Heartbeat.received_at).where(Heartbeat.id.in_(latest))  # type: ignore[union-attr]
        ):
            if what and cluster_id in online and received >= fresh_after:
                playing += 1
    return Interruption(len(ids), len(online), playing, held_off)
