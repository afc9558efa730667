"""/api/v1/statistics/...: figures per commune and period, per broadcast and per scheduled airing (the
report's own code)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException, Query, status

from broadcast_server.accounts.scope import visible_cluster_ids, visible_unit_ids
from broadcast_server.api.auth import PrincipalDep
from broadcast_server.api.deps import SessionDep
from broadcast_server.scheduling.airings import is_airing_id
from broadcast_server.services.dispatch import ensure_broadcast_in_scope
from broadcast_server.statistics.figures import total_figures
from broadcast_server.statistics.periods import Quarter, QuarterError
from broadcast_server.statistics.queries import NotFound, broadcast_figures, commune_figures

router = APIRouter(prefix="/statistics", tags=["statistics"])


@router.get("/communes")
def communes(
    session: SessionDep,
    principal: PrincipalDep,
    start: date | None = Query(None, description="First local day (Asia/Ho_Chi_Minh)."),
    end: date | None = Query(None, description="Day after the last one."),
    quarter: str | None = Query(None, description="Instead of start/end, e.g. 2026Q4.", examples=["2026Q4"]),
) -> dict:
    """Per commune: bulletins played, broadcast seconds, clusters played, emergencies, categories."""
    if quarter is not None:
        try:
            q = Quarter.parse(quarter)
        except QuarterError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        start, end = q.start, q.end
    if start is None or end is None or end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give quarter, or start and end (end after start)")
    rows = commune_figures(session, start, end)
    visible = visible_unit_ids(session, principal)
    if visible is not None:
        rows = [r for r in rows if r.unit_id in visible]
    return {
        "start": start,
        "end": end,
        "communes": [r.as_dict() for r in rows],
        "total": total_figures(rows).as_dict(),
    }


@router.get("/broadcasts/{broadcast_id}")
def broadcast(broadcast_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    """Targeted, delivered, played, late, failed, missed, rejected, stopped, with reasons and per commune."""
    ensure_broadcast_in_scope(session, principal, broadcast_id)
    try:
        return broadcast_figures(session, broadcast_id).as_dict()
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/airings/{airing_id}")
def airing(airing_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    """The same figures for one scheduled airing: `<slot>@<UTC start>#<item>`, as agents report it (the
    `#` written `%23` in the path). An account limited to some units sees the clusters of its scope only."""
    if not is_airing_id(airing_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{airing_id!r} is not '<slot>@<start>#<item>'")
    try:
        return broadcast_figures(session, airing_id, only_clusters=visible_cluster_ids(session, principal)).as_dict()
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
