"""Phát khẩn cấp: choose or type an emergency bulletin, choose targets, confirm what will be interrupted, send."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import RowId
from broadcast_server.cap.feed_state import configured_feed_views
from broadcast_server.cap.service import recent_alerts
from broadcast_server.console.access import FormProblem, PageForbidden, allowed
from broadcast_server.console.areas import bulletin_for, check_targets, target_choices
from broadcast_server.console.bulletin_queries import bulletins_in_scope
from broadcast_server.console.interruption import interruption_estimate
from broadcast_server.console.play_now import play_now
from broadcast_server.console.reading_choice import chosen_reading, reading_choices
from broadcast_server.console.templating import page
from broadcast_server.domain.targeting import resolve_target
from broadcast_server.models import AudioAsset, BulletinStatus, Priority
from broadcast_server.services.bulletins import BulletinError, BulletinForbidden, create_text_bulletin
from broadcast_server.services.dispatch import Repeat
from broadcast_server.services.tree_query import load_cluster_units, load_units

router = APIRouter()
Emergency = Annotated[Principal, Depends(allowed(Action.EMERGENCY))]
DEFAULT_REPEAT_INTERVAL_MIN = 10
RECENT_CAP_ALERTS = 10
RepeatTimes = Annotated[int, Form(ge=1, le=10)]
RepeatInterval = Annotated[int, Form(ge=1, le=1440)]
FullVolume = Annotated[bool, Form()]


def _emergency_bulletins(session, principal):
    return bulletins_in_scope(session, principal, statuses=[BulletinStatus.APPROVED.value], priority="emergency")


def _form_page(request, session, principal, *, status_code=200, reading=None, **values):
    runtime = request.app.state.runtime
    defaults = {
        "error": None,
        "chosen": [],
        "title_value": "",
        "text": "",
        "repeat_times": 1,
        "repeat_interval_min": DEFAULT_REPEAT_INTERVAL_MIN,
        "full_volume": True,
    }
    return page(
        request,
        "emergency.html",
        status_code=status_code,
        title="Phát khẩn cấp",
        bulletins=_emergency_bulletins(session, principal),
        choices=target_choices(session, principal),
        cap_alerts=recent_alerts(session, limit=RECENT_CAP_ALERTS),  # public warnings: not limited by area
        cap_feeds=configured_feed_views(session, runtime.settings, runtime.clock.now()),
        cap_feed_interval_s=round(runtime.settings.cap_feed_interval_s),
        **reading_choices(runtime.settings.tts_voice, reading),
        **{**defaults, **values},
    )


@router.get("/emergency")
def emergency_form(request: Request, session: SessionDep, principal: Emergency) -> Response:
    return _form_page(request, session, principal)


@router.post("/emergency/confirm")
def emergency_confirm(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Emergency,
    bulletin_id: Annotated[str, Form(max_length=64)] = "",
    title: Annotated[str, Form(max_length=300)] = "",
    text: Annotated[str, Form(max_length=20_000)] = "",
    unit_ids: Annotated[list[RowId], Form()] = [],  # noqa: B006
    repeat_times: RepeatTimes = 1,
    repeat_interval_min: RepeatInterval = DEFAULT_REPEAT_INTERVAL_MIN,
    full_volume: FullVolume = False,
    voice: Annotated[str, Form(max_length=40)] = "",
    speed: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The confirmation step: a typed text becomes an emergency bulletin (no queue, audited) first."""
    chosen = check_targets(session, principal, unit_ids)
    how = {"repeat_times": repeat_times, "repeat_interval_min": repeat_interval_min, "full_volume": full_volume}
    reading = None

    def again(error: str) -> Response:
        return _form_page(
            request,
            session,
            principal,
            status_code=422,
            error=error,
            chosen=list(chosen),
            title_value=title,
            text=text,
            reading=reading,
            **how,
        )

    try:
        reading = chosen_reading(voice, speed, runtime.settings.tts_voice)
    except FormProblem as exc:
        return again(str(exc))
    if not chosen:
        return again("Hãy chọn ít nhất một xã.")
    if text.strip():
        try:
            bulletin = create_text_bulletin(
                session,
                runtime.settings.audio_dir,
                title=title.strip() or "Thông báo khẩn cấp",
                text=text,
                priority=Priority.EMERGENCY.value,
                voice=reading.voice,
                rate_wpm=reading.rate_wpm,
                target_lufs=runtime.settings.target_lufs,
                principal=principal,
                ip=client_ip(request),
            )
        except BulletinForbidden as exc:
            raise PageForbidden("Bạn không được tạo tin khẩn cấp ở đây.") from exc
        except BulletinError as exc:
            return again(f"Không tạo được giọng đọc: {exc}")
        session.commit()  # the bulletin stays even if the person goes back: it can be chosen next time
    elif bulletin_id:
        bulletin = bulletin_for(session, principal, bulletin_id)
        if bulletin.priority != Priority.EMERGENCY or bulletin.status != BulletinStatus.APPROVED:
            return again("Bản tin đã chọn không phải tin khẩn cấp đã duyệt.")
    else:
        return again("Hãy chọn một tin khẩn cấp hoặc nhập nội dung.")
    clusters = resolve_target(load_units(session), load_cluster_units(session), chosen, ())
    estimate = interruption_estimate(
        session, clusters, runtime.clock.now(), heartbeat_interval_s=runtime.settings.heartbeat_interval_s
    )
    names = {c.unit_id: c.name for c in target_choices(session, principal)}
    return page(
        request,
        "emergency_confirm.html",
        title="Xác nhận phát khẩn cấp",
        bulletin=bulletin,
        asset=session.get(AudioAsset, bulletin.audio_asset_id) if bulletin.audio_asset_id else None,
        estimate=estimate,
        chosen=chosen,
        names=[names.get(u, str(u)) for u in chosen],
        **how,
    )


@router.post("/emergency/send")
def emergency_send(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    principal: Emergency,
    bulletin_id: Annotated[str, Form(max_length=64)] = "",
    unit_ids: Annotated[list[RowId], Form()] = [],  # noqa: B006
    repeat_times: RepeatTimes = 1,
    repeat_interval_min: RepeatInterval = DEFAULT_REPEAT_INTERVAL_MIN,
    full_volume: FullVolume = False,
) -> Response:
    bulletin = bulletin_for(session, principal, bulletin_id)
    if bulletin.priority != Priority.EMERGENCY:
        raise FormProblem("Chỉ phát khẩn cấp được tin khẩn cấp.")
    chosen = check_targets(session, principal, unit_ids)
    broadcast, _ = play_now(
        session,
        runtime,
        background,
        principal,
        bulletin.id,
        chosen,
        ip=client_ip(request),
        repeat=Repeat(repeat_times, repeat_interval_min * 60),
        volume=100 if full_volume else None,
    )
    return RedirectResponse(f"/history/{broadcast.id}", status_code=303)
