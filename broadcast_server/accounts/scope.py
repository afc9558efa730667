"""Where in the administrative tree a principal may act: its scope unit's subtree (any depth)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.domain.targeting import UnitRef, descendants
from broadcast_server.models import Cluster
from broadcast_server.services.tree_query import load_units


class OutOfScope(PermissionError):
    """A request touches a unit, cluster or object outside the caller's part of the tree."""


def visible_unit_ids(session: Session, principal: Principal) -> set[int] | None:
    """Ids of the units the principal may see and target, retired ones included; None means every unit."""
    if principal.scope_unit_id is None:
        return None
    return descendants(load_units(session, include_retired=True), [principal.scope_unit_id])


def unit_in_scope(session: Session, principal: Principal, unit_id: int | None) -> bool:
    """Whether the unit lies in the principal's subtree; a missing unit (None) only for unscoped principals."""
    visible = visible_unit_ids(session, principal)
    if visible is None:
        return True
    return unit_id is not None and unit_id in visible


def cluster_in_scope(session: Session, principal: Principal, cluster_id: str) -> bool:
    """Whether the cluster hangs under a unit of the principal's subtree (an unknown cluster: no)."""
    unit_id = session.exec(select(Cluster.unit_id).where(Cluster.id == cluster_id)).first()
    if unit_id is None:
        return principal.scope_unit_id is None
    return unit_in_scope(session, principal, unit_id)


def unit_label(session: Session, unit_id: int | None) -> str:
    """ "Bình Sơn / Bình Thạnh" style path of a unit for messages; the whole tree for None."""
    if unit_id is None:
        return "the whole tree"
    units = load_units(session, include_retired=True)
    names: list[str] = []
    current: UnitRef | None = units.get(unit_id)
    while current is not None:
        names.append(current.name)
        current = units.get(current.parent_id) if current.parent_id is not None else None
    return " / ".join(reversed(names)) or f"unit {unit_id}"


def common_unit(session: Session, unit_ids: Iterable[int]) -> int | None:
    """The lowest unit that contains all the given units (None when they share no ancestor or none given).

    Audit entries are filed under it, so each level sees what concerned its subtree.
    """
    units = load_units(session, include_retired=True)
    common: list[int] | None = None
    for unit_id in unit_ids:
        chain: list[int] = []
        current = units.get(unit_id)
        while current is not None:
            chain.append(current.id)
            current = units.get(current.parent_id) if current.parent_id is not None else None
        chain.reverse()  # root first
        if common is None:
            common = chain
        else:
            length = 0
            while length < min(len(common), len(chain)) and common[length] == chain[length]:
                length += 1
            common = common[:length]
    return common[-1] if common else None


def visible_cluster_ids(session: Session, principal: Principal) -> set[str] | None:
    """Ids of the clusters under the principal's subtree; None means every cluster."""
    visible = visible_unit_ids(session, principal)
    if visible is None:
        return None
    return {
        cluster_id for cluster_id, unit_id in session.exec(select(Cluster.id, Cluster.unit_id)) if unit_id in visible
    }


def target_outside_scope(
    session: Session, principal: Principal, unit_ids: Iterable[int], cluster_ids: Iterable[str]
) -> str | None:
    """Why a target (units and single clusters) is not wholly inside the principal's scope, or None if it is."""
    visible = visible_unit_ids(session, principal)
    if visible is None:
        return None
    for unit_id in unit_ids:
        if unit_id not in visible:
            return f"unit {unit_id} ({unit_label(session, unit_id)}) is outside your scope"
    cluster_ids = list(cluster_ids)
    if cluster_ids:
        placed = dict(session.exec(select(Cluster.id, Cluster.unit_id).where(Cluster.id.in_(cluster_ids))).all())  # type: ignore[attr-defined]
        for cluster_id in cluster_ids:
            unit_id = placed.get(cluster_id)
            if unit_id is not None and unit_id not in visible:
                return (
                    f"cluster {cluster_id!r} of unit {unit_id} ({unit_label(session, unit_id)}) is outside your scope"
                )
    return None
