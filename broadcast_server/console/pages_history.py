"""Lịch sử phát: broadcasts and scheduled airings, newest first, and each one's coverage per commune (only
communes in scope)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import case, func
from sqlmodel import select

from broadcast_server.accounts.principal import NotPermitted, Principal
from broadcast_server.accounts.scope import OutOfScope, visible_cluster_ids, visible_unit_ids
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.console.access import ConsolePrincipal, PageForbidden, PageNotFound
from broadcast_server.console.templating import page
from broadcast_server.db.types import utcnow
from broadcast_server.domain.targeting import reporting_unit
from broadcast_server.models import Broadcast, Bulletin, Cluster, Delivery, DeliveryState, ScheduledAiring
from broadcast_server.services.broadcast_stop import UNFINISHED, check_may_stop, stop_broadcast
from broadcast_server.services.coverage_query import NotFound, broadcast_coverage
from broadcast_server.services.tree_query import load_units
from broadcast_server.statistics.queries import broadcast_figures, recent_airings

router = APIRouter()
PAGE_SIZE = 50


@router.get("/history")
def history(request: Request, session: SessionDep, principal: ConsolePrincipal) -> Response:
    visible = visible_unit_ids(session, principal)
    played = func.sum(case((Delivery.state == DeliveryState.PLAYED.value, 1), else_=0))
    query = (
        select(Broadcast, Bulletin.title, func.count(Delivery.id), played)
        .join(Bulletin, Bulletin.id == Broadcast.bulletin_id)  # type: ignore[arg-type]
        .join(Delivery, Delivery.broadcast_id == Broadcast.id)  # type: ignore[arg-type]
        .join(Cluster, Cluster.id == Delivery.cluster_id)  # type: ignore[arg-type]
        .group_by(Broadcast.id, Bulletin.title)
        .order_by(Broadcast.created_at.desc())  # type: ignore[attr-defined]
        .limit(PAGE_SIZE)
    )
    if visible is not None:
        query = query.where(Cluster.unit_id.in_(sorted(visible)))  # type: ignore[attr-defined]
    rows = session.exec(query).all()
    airings = recent_airings(session, utcnow(), unit_ids=visible, limit=PAGE_SIZE)
    return page(request, "history.html", title="Lịch sử phát", rows=rows, airings=airings)


@router.get("/history/airings/{airing_id}")
def airing_page(request: Request, airing_id: str, session: SessionDep, principal: ConsolePrincipal) -> Response:
    """One scheduled airing: clusters sent it and what each reported, per commune of the caller's scope."""
    airing = session.get(ScheduledAiring, airing_id)
    if airing is None:
        raise PageNotFound("Không có lần phát theo lịch này.")
    visible = visible_cluster_ids(session, principal)
    figures = broadcast_figures(session, airing_id, only_clusters=visible)
    if visible is not None and not figures.counts.targeted:
        raise PageForbidden("Lần phát này không phát ở địa bàn của bạn.")
    return page(request, "airing.html", title="Phát theo lịch", airing=airing, figures=figures)


def _may_stop(session, principal: Principal, broadcast: Broadcast) -> bool:
    try:
        check_may_stop(session, principal, broadcast)
    except (NotPermitted, OutOfScope):
        return False
    return True


def _stopped_text(told: int, never_sent: int, queued: int) -> str:
    text = f"Đã gửi lệnh dừng tới {told} cụm loa"
    if never_sent:
        text += f"; {never_sent} lệnh phát chưa gửi đã hủy"
    return text + (f" ({queued} lệnh dừng chưa được máy chủ MQTT xác nhận)." if queued else ".")


@router.get("/history/{broadcast_id}")
def broadcast_page(
    request: Request,
    broadcast_id: str,
    session: SessionDep,
    principal: ConsolePrincipal,
    told: int | None = None,
    never_sent: int = 0,
    queued: int = 0,
) -> Response:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise PageNotFound("Không có lượt phát này.")
    try:
        coverage, states = broadcast_coverage(session, broadcast_id)
    except NotFound as exc:
        raise PageNotFound("Không có lượt phát này.") from exc
    visible = visible_unit_ids(session, principal)
    rows = list(coverage.rows)
    total = coverage.total
    if visible is not None:
        units = load_units(session, include_retired=True)
        mine = {reporting_unit(units, u).name for u in visible if u in units}
        rows = [r for r in rows if r.name in mine]
        if not rows:
            raise PageForbidden("Lượt phát này không phát ở địa bàn của bạn.")
        total = None  # totals would count other communes' clusters
    bulletin = session.get(Bulletin, broadcast.bulletin_id)
    unfinished = session.exec(
        select(func.count()).where(Delivery.broadcast_id == broadcast_id, Delivery.state.in_(UNFINISHED))  # type: ignore[attr-defined]
    ).one()
    flash = None if told is None else _stopped_text(told, never_sent, queued)
    return page(
        request,
        "broadcast.html",
        title="Lượt phát",
        broadcast=broadcast,
        bulletin=bulletin,
        rows=rows,
        total=total,
        states=states if visible is None else None,
        can_stop=bool(unfinished) and _may_stop(session, principal, broadcast),
        unfinished=unfinished,
        flash=flash,
    )


@router.post("/history/{broadcast_id}/stop")
def stop_page(
    request: Request, broadcast_id: str, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal
) -> Response:
    """Dừng lượt phát: the console's way to `POST /api/v1/broadcasts/{id}/stop`."""
    if session.get(Broadcast, broadcast_id) is None:
        raise PageNotFound("Không có lượt phát này.")
    if runtime.bus is None:
        raise PageForbidden("Máy chủ chưa kết nối với máy chủ MQTT: chưa dừng được lượt phát.")
    try:
        result = stop_broadcast(
            session, runtime.bus, principal, broadcast_id, ttl_s=runtime.settings.command_ttl_s, ip=client_ip(request)
        )
    except (NotPermitted, OutOfScope) as exc:
        raise PageForbidden("Bạn không được dừng lượt phát này.") from exc
    session.commit()
    waiting = result.told - result.acknowledged
    return RedirectResponse(
        f"/history/{broadcast_id}?told={result.told}&never_sent={result.never_sent}&queued={waiting}",
        status_code=303,
    )
