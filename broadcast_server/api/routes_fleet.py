"""/api/v1/units and /api/v1/clusters: the administrative tree and the clusters on it (the caller's scope),
and technicians' commands to one cluster."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlmodel import select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import ClusterOut, DeviceCommandIn, DeviceCommandOut, UnitOut
from broadcast_server.models import AdminUnit, Cluster, ClusterState
from broadcast_server.services.device_commands import DeviceCommandError, DeviceCommandType, send_device_command

router = APIRouter(tags=["fleet"])
Technician = Annotated[Principal, Depends(require(Action.DEVICE_COMMAND))]


@router.get("/units", response_model=list[UnitOut])
def units(session: SessionDep, principal: PrincipalDep, level: str | None = None) -> list[UnitOut]:
    query = select(AdminUnit).where(AdminUnit.retired_at.is_(None)).order_by(AdminUnit.id)  # type: ignore[union-attr]
    if level:
        query = query.where(AdminUnit.level == level)
    visible = visible_unit_ids(session, principal)
    return [
        UnitOut(id=u.id, parent_id=u.parent_id, name=u.name, level=u.level)  # type: ignore[arg-type]
        for u in session.exec(query)
        if visible is None or u.id in visible
    ]


@router.get("/clusters", response_model=list[ClusterOut])
def clusters(session: SessionDep, principal: PrincipalDep) -> list[ClusterOut]:
    rows = session.exec(
        select(Cluster, ClusterState).join(ClusterState, isouter=True).order_by(Cluster.id)  # type: ignore[arg-type]
    ).all()
    visible = visible_unit_ids(session, principal)
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
        if visible is None or c.unit_id in visible
    ]


@router.post("/clusters/{cluster_id}/commands", status_code=status.HTTP_202_ACCEPTED, response_model=DeviceCommandOut)
def command(
    cluster_id: str,
    body: DeviceCommandIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Technician,
    request: Request,
) -> DeviceCommandOut:
    """Send volume, stop, ping or amplifier on/off to one cluster of the caller's scope (audited)."""
    if runtime.bus is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "server is not connected to the MQTT broker")
    if session.get(Cluster, cluster_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"cluster {cluster_id!r} does not exist")
    try:
        sent, acknowledged = send_device_command(
            session,
            runtime.bus,
            principal,
            cluster_id,
            DeviceCommandType(body.type),
            volume=body.volume,
            amplifier=body.amplifier,
            ttl_s=body.ttl_s,
            ip=client_ip(request),
        )
    except DeviceCommandError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return DeviceCommandOut(command_id=sent["id"], cluster_id=cluster_id, type=body.type, acknowledged=acknowledged)
