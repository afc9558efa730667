"""Duyệt tin: the approval queue of the approver's area; approve, or return with a comment (required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import SessionDep
from broadcast_server.console.access import FormProblem, PageForbidden, allowed
from broadcast_server.console.areas import bulletin_for
from broadcast_server.console.bulletin_queries import bulletins_in_scope
from broadcast_server.console.templating import page
from broadcast_server.models import AudioAsset
from broadcast_server.services.bulletins import BulletinError, BulletinForbidden, approve_bulletin, return_bulletin

router = APIRouter()
Approver = Annotated[Principal, Depends(allowed(Action.APPROVE_BULLETIN))]


@router.get("/review")
def queue(request: Request, session: SessionDep, principal: Approver, done: str = "") -> Response:
    waiting = bulletins_in_scope(session, principal, statuses=["submitted"])
    assets = {a.id: a for a in (session.get(AudioAsset, b.audio_asset_id) for b in waiting if b.audio_asset_id) if a}
    flash = {"approved": "Đã duyệt bản tin.", "returned": "Đã trả lại bản tin kèm ý kiến."}.get(done)
    return page(request, "review.html", title="Duyệt tin", waiting=waiting, assets=assets, flash=flash)


@router.post("/review/{bulletin_id}/approve")
def approve(request: Request, bulletin_id: str, session: SessionDep, principal: Approver) -> Response:
    bulletin_for(session, principal, bulletin_id)
    try:
        approve_bulletin(session, bulletin_id, principal, ip=client_ip(request))
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được duyệt bản tin này.") from exc
    except BulletinError as exc:
        raise FormProblem("Bản tin này không còn chờ duyệt (có thể người khác đã xử lý).") from exc
    return RedirectResponse("/review?done=approved", status_code=303)


@router.post("/review/{bulletin_id}/return")
def send_back(
    request: Request,
    bulletin_id: str,
    session: SessionDep,
    principal: Approver,
    comment: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    bulletin_for(session, principal, bulletin_id)
    if not comment.strip():
        raise FormProblem("Khi trả lại bản tin, hãy ghi rõ cần sửa gì.")
    try:
        return_bulletin(session, bulletin_id, principal, comment, ip=client_ip(request))
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được trả lại bản tin này.") from exc
    except BulletinError as exc:
        raise FormProblem("Bản tin này không còn chờ duyệt (có thể người khác đã xử lý).") from exc
    return RedirectResponse("/review?done=returned", status_code=303)
