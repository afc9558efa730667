"""Coverage of a broadcast per commune (or district where there is no commune level), from deliveries."""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast_server.domain.coverage import Coverage, compute_coverage
from broadcast_server.domain.targeting import reporting_unit
from broadcast_server.models import Broadcast, Cluster, ClusterState, Delivery, DeliveryState
from broadcast_server.services.tree_query import load_units


class NotFound(LookupError):
    """The broadcast asked for does not exist."""


def broadcast_coverage(session: Session, broadcast_id: str) -> tuple[Coverage, dict[str, int]]:
    """Per-group coverage of one broadcast and the count of deliveries in each state.

    A cluster counts as offline when its last status is offline or it has never connected.
    """
    if session.get(Broadcast, broadcast_id) is None:
        raise NotFound(f"broadcast {broadcast_id!r} does not exist")
    rows = session.exec(
        select(Delivery.cluster_id, Delivery.state, Cluster.unit_id, ClusterState.online)
        .join(Cluster, Cluster.id == Delivery.cluster_id)  # type: ignore[arg-type]
        .join(ClusterState, ClusterState.cluster_id == Delivery.cluster_id, isouter=True)  # type: ignore[arg-type]
        .where(Delivery.broadcast_id == broadcast_id)
    ).all()
    units = load_units(session, include_retired=True)
    group_of: dict[int, str] = {}
    memberships = []
    played = set()
    offline = set()
    states = {state.value: 0 for state in DeliveryState}
    for cluster_id, state, unit_id, online in rows:
        if not online:
            offline.add(cluster_id)
        if unit_id not in group_of:
            group_of[unit_id] = reporting_unit(units, unit_id).name
        memberships.append((group_of[unit_id], cluster_id))
        states[state] = states.get(state, 0) + 1
        if state == DeliveryState.PLAYED:
            played.add(cluster_id)
    return compute_coverage(memberships, played, offline=offline), states


def latest_broadcast_id(session: Session) -> str | None:
    return session.exec(select(Broadcast.id).order_by(Broadcast.created_at.desc()).limit(1)).first()  # type: ignore[attr-defined]
