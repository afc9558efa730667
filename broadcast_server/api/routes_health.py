"""/api/v1/fleet/...: what technicians need: offline clusters per commune, flapping, uptime, faults, clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from broadcast_server.accounts.scope import visible_cluster_ids, visible_unit_ids
from broadcast_server.api.auth import PrincipalDep
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.health.config import get_health_settings
from broadcast_server.health.fleet_view import fleet_status, uptime

router = APIRouter(prefix="/fleet", tags=["fleet health"])


class OfflineClusterOut(BaseModel):
    cluster_id: str
    since: datetime | None
    last_seen_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    cause: str | None
    drops_7d: int


class CommuneHealthOut(BaseModel):
    unit_id: int
    name: str
    clusters: int
    online: int
    online_share: float
    offline: list[OfflineClusterOut]


class ClusterNoteOut(BaseModel):
    cluster_id: str
    commune: str
    online: bool
    detail: str
    value: float | None = None
    at: datetime | None = None


class FleetStatusOut(BaseModel):
    at: datetime
    clusters: int
    online: int
    offline: int
    communes: list[CommuneHealthOut]
    faulty_amplifiers: list[ClusterNoteOut]
    amplifiers_off: list[ClusterNoteOut] = Field(
        description="Clusters whose amplifier a technician holds off: they play nothing, emergencies included."
    )
    refusing_commands: list[ClusterNoteOut] = Field(
        description="Clusters whose agent knows no server key (not enrolled): every command is refused."
    )
    clock_off: list[ClusterNoteOut]
    clock_offset_threshold_s: float
    flapping: list[ClusterNoteOut]
    recent_alerts: list[dict]


class UptimeOut(BaseModel):
    cluster_id: str
    commune: str
    online_s: float
    drops: int
    uptime: float


@router.get("/status", response_model=FleetStatusOut)
def status_(
    session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep, only_offline: bool = False
) -> FleetStatusOut:
    """Every commune of the caller's scope with its offline clusters (since when, last seen, last error, drops)."""
    settings = get_health_settings()
    view = fleet_status(session, datetime.now(UTC), clock_offset_threshold_s=settings.clock_offset_threshold_s)
    units, clusters = visible_unit_ids(session, principal), visible_cluster_ids(session, principal)

    def notes(found) -> list[ClusterNoteOut]:
        return [ClusterNoteOut(**vars(n)) for n in found if clusters is None or n.cluster_id in clusters]

    alerts = [a.payload() for a in health.recent_alerts] if (health := _health(runtime)) is not None else []
    mine = [c for c in view.communes if units is None or c.unit_id in units]
    total, online = (
        (view.clusters, view.online) if units is None else (sum(c.clusters for c in mine), sum(c.online for c in mine))
    )
    communes = [
        CommuneHealthOut(
            unit_id=c.unit_id,
            name=c.name,
            clusters=c.clusters,
            online=c.online,
            online_share=c.online_share,
            offline=[OfflineClusterOut(**vars(o)) for o in c.offline],
        )
        for c in mine
        if c.offline or not only_offline
    ]
    return FleetStatusOut(
        at=view.at,
        clusters=total,
        online=online,
        offline=total - online,
        communes=communes,
        faulty_amplifiers=notes(view.faulty_amplifiers),
        amplifiers_off=notes(view.amplifiers_off),
        refusing_commands=notes(view.refusing_commands),
        clock_off=notes(view.clock_off),
        clock_offset_threshold_s=view.clock_offset_threshold_s,
        flapping=notes(view.flapping),
        recent_alerts=alerts if units is None else [],  # alerts name communes anywhere: unscoped callers only
    )


def _health(runtime):
    return runtime.ingest.health if runtime.ingest is not None else None


@router.get("/uptime", response_model=list[UptimeOut])
def uptime_(
    session: SessionDep,
    principal: PrincipalDep,
    start: datetime | None = Query(None, description="Đầu kỳ (mặc định: 7 ngày trước)."),
    end: datetime | None = Query(None, description="Cuối kỳ (mặc định: bây giờ)."),
) -> list[UptimeOut]:
    """Share of the period each cluster was online, and how often it dropped."""
    now = datetime.now(UTC)
    end = end or now
    start = start or end - timedelta(days=7)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start and end need a time zone, e.g. Z or +07:00")
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    clusters = visible_cluster_ids(session, principal)
    return [
        UptimeOut(cluster_id=r.cluster_id, commune=r.commune, online_s=r.online_s, drops=r.drops, uptime=r.uptime)
        for r in uptime(session, start, end, now)
        if clusters is None or r.cluster_id in clusters
    ]
