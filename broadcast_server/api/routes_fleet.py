"""/api/v1/units and /api/v1/clusters: the administrative tree and the clusters on it."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from broadcast_server.api.deps import SessionDep
from broadcast_server.api.schemas import ClusterOut, UnitOut
from broadcast_server.models import AdminUnit, Cluster, ClusterState

router = APIRouter(tags=["fleet"])


@router.get("/units", response_model=list[UnitOut])
def units(session: SessionDep, level: str | None = None) -> list[UnitOut]:
    query = select(AdminUnit).where(AdminUnit.retired_at.is_(None)).order_by(AdminUnit.id)  # type: ignore[union-attr]
    if level:
        query = query.where(AdminUnit.level == level)
    return [UnitOut(id=u.id, parent_id=u.parent_id, name=u.name, level=u.level) for u in session.exec(query)]  # type: ignore[arg-type]


@router.get("/clusters", response_model=list[ClusterOut])
def clusters(session: SessionDep) -> list[ClusterOut]:
    rows = session.exec(
        select(Cluster, ClusterState).join(ClusterState, isouter=True).order_by(Cluster.id)  # type: ignore[arg-type]
    ).all()
    return [
        ClusterOut(
            id=c.id,
            unit_id=c.unit_id,
            lat=c.lat,
            lon=c.lon,
            online=s.online if s else None,
            last_seen_at=s.last_seen_at if s else None,
        )
        for c, s in rows
    ]
