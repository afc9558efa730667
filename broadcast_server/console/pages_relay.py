"""Tiếp sóng: make a live relay bulletin (a stream address and a length in minutes), and edit one on its page.

The server stores only the address; clusters connect to the stream themselves when the relay is broadcast.
Every refusal of the relay rules (`domain/relay.py`) is told in Vietnamese with what was typed kept.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import SessionDep
from broadcast_server.api.schemas import RowId
from broadcast_server.console.access import FormProblem, PageForbidden
from broadcast_server.console.areas import bulletin_for
from broadcast_server.console.pages_bulletins import (
    EDITABLE,
    MAX_TITLE,
    RELAY_MINUTES,
    Drafter,
    chosen_owner,
    owner_choices,
    relay_minutes,
    render_bulletin,
)
from broadcast_server.console.templating import page
from broadcast_server.domain.relay import MAX_STREAM_URL_LENGTH, stream_url_refusal
from broadcast_server.models import BulletinKind
from broadcast_server.services.bulletins import BulletinError, BulletinForbidden, BulletinStateError, submit_bulletin
from broadcast_server.services.relays import create_relay_bulletin, edit_relay_bulletin

router = APIRouter()
# Room for an address too long for the clusters, so the page can say so with it kept (the inputs have no
# maxlength: a browser would cut a pasted address short without a word); beyond: the 422 page.
MAX_TYPED_URL = 4 * MAX_STREAM_URL_LENGTH
_WHOLE_NUMBER = re.compile(r"^[0-9]{1,6}$")

Title = Annotated[str, Form(max_length=MAX_TITLE)]
StreamUrl = Annotated[str, Form(max_length=MAX_TYPED_URL)]
Minutes = Annotated[str, Form(max_length=10)]
Category = Annotated[str, Form(max_length=200)]


def relay_seconds(minutes: str) -> int:
    """The typed length in seconds; FormProblem unless it is a whole number of minutes in RELAY_MINUTES."""
    low, high = RELAY_MINUTES
    typed = minutes.strip()
    if not _WHOLE_NUMBER.match(typed) or not low <= int(typed) <= high:
        raise FormProblem(f"Thời lượng tiếp sóng phải là số phút nguyên từ {low} đến {high} (tối đa 4 giờ).")
    return int(typed) * 60


def checked_relay(title: str, stream_url: str, minutes: str) -> tuple[str, str, int]:
    """Title, address and length (s) as the service takes them; FormProblem says in Vietnamese what to fix.

    Checked here, before the service, so that nothing is half changed and every reason is in Vietnamese."""
    if not title.strip():
        raise FormProblem("Hãy đặt tiêu đề cho bản tin.")
    url = stream_url.strip()
    refusal = stream_url_refusal(url)
    if refusal is not None:
        raise FormProblem(refusal.vi)
    return title.strip(), url, relay_seconds(minutes)


def _relay_page(request, session, principal, *, status_code=200, **values):
    defaults = {
        "error": None,
        "title_value": "",
        "category": "",
        "stream_url": "",
        "minutes": "",
        "owner_unit_id": None,
    }
    return page(
        request,
        "bulletin_relay.html",
        status_code=status_code,
        title="Tiếp sóng",
        owners=owner_choices(session, principal),
        minutes_range=RELAY_MINUTES,
        **{**defaults, **values},
    )


@router.get("/bulletins/relay")
def relay_form(request: Request, session: SessionDep, principal: Drafter) -> Response:
    return _relay_page(request, session, principal)


@router.post("/bulletins/relay")
def new_relay(
    request: Request,
    session: SessionDep,
    principal: Drafter,
    title: Title = "",
    stream_url: StreamUrl = "",
    minutes: Minutes = "",
    category: Category = "",
    owner_unit_id: Annotated[RowId | None, Form()] = None,
    action: Annotated[str, Form()] = "save",
) -> Response:
    """'save' keeps a draft relay; 'submit' also sends it for approval."""
    owner = chosen_owner(session, principal, owner_unit_id)
    typed = {
        "title_value": title,
        "category": category,
        "stream_url": stream_url,
        "minutes": minutes,
        "owner_unit_id": owner,
    }
    try:
        clean_title, url, duration_s = checked_relay(title, stream_url, minutes)
    except FormProblem as exc:
        return _relay_page(request, session, principal, status_code=422, error=str(exc), **typed)
    ip = client_ip(request)
    try:
        bulletin = create_relay_bulletin(
            session,
            title=clean_title,
            stream_url=url,
            duration_s=duration_s,
            category=category.strip() or None,
            principal=principal,
            owner_unit_id=owner,
            ip=ip,
        )
        if action == "submit":
            submit_bulletin(session, bulletin.id, principal, ip=ip)
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được soạn bản tin cho địa bàn này.") from exc
    except BulletinError as exc:  # a rule the service has and this page does not check yet
        session.rollback()
        error = f"Chưa lưu được bản tin tiếp sóng: {exc}"
        return _relay_page(request, session, principal, status_code=422, error=error, **typed)
    return RedirectResponse(f"/bulletins/{bulletin.id}?created=1", status_code=303)


@router.post("/bulletins/{bulletin_id}/edit-relay")
def edit_relay(
    request: Request,
    bulletin_id: str,
    session: SessionDep,
    principal: Drafter,
    title: Title = "",
    stream_url: StreamUrl = "",
    minutes: Minutes = "",
    category: Category = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    """Change a draft or returned relay's title, category, address and length; 'submit' also sends it for approval."""
    bulletin = bulletin_for(session, principal, bulletin_id)
    if bulletin.kind != BulletinKind.RELAY:
        raise FormProblem("Bản tin này không phải bản tin tiếp sóng.")
    if bulletin.status not in EDITABLE:
        raise FormProblem("Bản tin này đã gửi duyệt hoặc đã được duyệt nên không sửa được nữa.")
    typed = {"title": title, "category": category, "stream_url": stream_url, "minutes": minutes}

    def again(error: str) -> Response:
        return render_bulletin(request, session, principal, bulletin, status_code=422, relay_edit=typed, error=error)

    try:
        clean_title, url, duration_s = checked_relay(title, stream_url, minutes)
    except FormProblem as exc:
        return again(str(exc))
    stored_s = bulletin.relay_duration_s
    # A length with seconds (made through the API) is shown rounded: left as it is unless the minutes change.
    keep_length = stored_s is not None and stored_s % 60 != 0 and duration_s == relay_minutes(stored_s) * 60
    ip = client_ip(request)
    try:
        edit_relay_bulletin(
            session,
            bulletin_id,
            principal,
            title=clean_title,
            stream_url=url,
            duration_s=None if keep_length else duration_s,
            category=category.strip(),
            ip=ip,
        )
        if action == "submit":
            submit_bulletin(session, bulletin_id, principal, ip=ip)
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được sửa bản tin này.") from exc
    except BulletinStateError as exc:
        raise FormProblem("Bản tin này đã gửi duyệt hoặc đã được duyệt nên không sửa được nữa.") from exc
    except BulletinError as exc:  # a rule the service has and this page does not check yet
        session.rollback()
        return again(f"Chưa sửa được bản tin: {exc}")
    return RedirectResponse(f"/bulletins/{bulletin_id}", status_code=303)
