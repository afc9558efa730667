"""/api/v1/broadcasts: "play now" to a target, its progress and its coverage per commune."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, status
from sqlalchemy import func
from sqlmodel import select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import BroadcastCreate, BroadcastOut, BroadcastStopOut, CoverageOut, CoverageRowOut
from broadcast_server.domain.targeting import UnknownTarget
from broadcast_server.models import Broadcast, Delivery
from broadcast_server.services.broadcast_stop import stop_broadcast
from broadcast_server.services.coverage_query import NotFound, broadcast_coverage
from broadcast_server.services.dispatch import (
    DispatchError,
    Repeat,
    Target,
    create_broadcast,
    ensure_broadcast_in_scope,
    send_broadcast,
)

router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])
Broadcaster = Annotated[Principal, Depends(require(Action.BROADCAST))]


def _out(session, broadcast: Broadcast) -> BroadcastOut:
    counts = dict(
        session.exec(
            select(Delivery.state, func.count()).where(Delivery.broadcast_id == broadcast.id).group_by(Delivery.state)
        ).all()
    )
    return BroadcastOut(
        id=broadcast.id,
        bulletin_id=broadcast.bulletin_id,
        priority=broadcast.priority,
        status=broadcast.status,
        created_at=broadcast.created_at,
        expires_at=broadcast.expires_at,
        start_at=broadcast.start_at,
        targeted=sum(counts.values()),
        states=counts,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BroadcastOut)
def create(
    body: BroadcastCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    principal: Broadcaster,
    request: Request,
) -> BroadcastOut:
    """Create the broadcast and its deliveries now; commands go out right after the response.

    Every target unit and cluster must lie in the caller's scope (403 naming the first that does not).
    """
    if runtime.bus is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "server is not connected to the MQTT broker")
    try:
        broadcast, _ = create_broadcast(
            session,
            body.bulletin_id,
            Target(tuple(body.target.unit_ids), tuple(body.target.cluster_ids)),
            ttl_s=body.ttl_s or runtime.settings.command_ttl_s,
            now=runtime.clock.now(),
            principal=principal,
            ip=client_ip(request),
            repeat=Repeat(body.repeat_times, (body.repeat_interval_min or 0) * 60),
            volume=body.volume,
            start_at=body.start_at,
        )
    except (DispatchError, UnknownTarget) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    background.add_task(send_broadcast, runtime.engine, runtime.bus, broadcast.id, runtime.settings.public_url)
    return _out(session, broadcast)


@router.post("/{broadcast_id}/stop", status_code=status.HTTP_202_ACCEPTED, response_model=BroadcastStopOut)
def stop(
    broadcast_id: str, session: SessionDep, runtime: RuntimeDep, principal: Broadcaster, request: Request
) -> BroadcastStopOut:
    """Stop the broadcast wherever it has not finished: unsent deliveries never go out, every cluster that
    holds it is told to drop it (cut if it plays, its repeats ended), what else plays is left alone. An
    emergency broadcast needs the emergency permission. Audited."""
    if runtime.bus is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "server is not connected to the MQTT broker")
    if session.get(Broadcast, broadcast_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"broadcast {broadcast_id!r} does not exist")
    stopped = stop_broadcast(  # NotPermitted and OutOfScope answer 403 (api/app.py)
        session, runtime.bus, principal, broadcast_id, ttl_s=runtime.settings.command_ttl_s, ip=client_ip(request)
    )
    session.commit()
    return BroadcastStopOut(
        broadcast_id=broadcast_id,
        never_sent=stopped.never_sent,
        told=stopped.told,
        acknowledged=stopped.acknowledged,
    )


@router.get("/{broadcast_id}", response_model=BroadcastOut)
def read(broadcast_id: str, session: SessionDep, principal: PrincipalDep) -> BroadcastOut:
    ensure_broadcast_in_scope(session, principal, broadcast_id)
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"broadcast {broadcast_id!r} does not exist")
    return _out(session, broadcast)


@router.get("/{broadcast_id}/coverage", response_model=CoverageOut)
def coverage(broadcast_id: str, session: SessionDep, principal: PrincipalDep) -> CoverageOut:
    ensure_broadcast_in_scope(session, principal, broadcast_id)
    try:
        result, states = broadcast_coverage(session, broadcast_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return CoverageOut(
        broadcast_id=broadcast_id,
        communes=[CoverageRowOut(**vars(r)) for r in result.rows],
        total=CoverageRowOut(**vars(result.total)),
        states=states,
    )
