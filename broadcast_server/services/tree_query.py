"""Load the administrative tree and cluster placement for the pure targeting and coverage code."""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast_server.domain.targeting import UnitRef
from broadcast_server.models import AdminUnit, Cluster


def load_units(session: Session, *, include_retired: bool = False) -> dict[int, UnitRef]:
    # Columns, not AdminUnit objects: a province has thousands of villages, and this runs on every dispatch.
    query = select(AdminUnit.id, AdminUnit.parent_id, AdminUnit.name, AdminUnit.level)
    if not include_retired:
        query = query.where(AdminUnit.retired_at.is_(None))  # type: ignore[union-attr]
    return {u.id: UnitRef(u.id, u.parent_id, u.name, u.level) for u in session.exec(query)}  # type: ignore[misc]


def load_cluster_units(session: Session) -> dict[str, int]:
    return dict(session.exec(select(Cluster.id, Cluster.unit_id)).all())  # type: ignore[arg-type]
