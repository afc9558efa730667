"""Lịch phát: the week calendar of the stored schedule, the form that schedules an approved bulletin, a
schedule file sent from the browser, the list of slots of the user's area and each slot's page, where it
can be cancelled."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from broadcast_server.accounts.principal import Action, NotPermitted, Principal
from broadcast_server.accounts.scope import OutOfScope, visible_cluster_ids, visible_unit_ids
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import RowId
from broadcast_server.console.access import ConsolePrincipal, PageForbidden, PageNotFound, allowed
from broadcast_server.console.areas import bulletin_for, check_targets, target_choices
from broadcast_server.console.bulletin_queries import bulletins_in_scope
from broadcast_server.console.slot_view import SlotItem, SlotRow, SlotView
from broadcast_server.console.templating import page
from broadcast_server.console.upcoming import airings
from broadcast_server.console.week_calendar import WEEKDAY_NAMES_VI, week_days, week_start
from broadcast_server.models import Bulletin, BulletinKind, Programme, ProgrammeItem, Slot
from broadcast_server.scheduling.cancel import SlotAlreadyCancelled, SlotNotFound, cancel_refusal, cancel_slot
from broadcast_server.scheduling.catalog import target_spec
from broadcast_server.scheduling.rules_vi import rule_in_vietnamese
from broadcast_server.scheduling.schedule_file import ScheduleFileError
from broadcast_server.scheduling.sent_file import MAX_SENT_FILE_BYTES, FileOutsideScope, apply_sent_file
from broadcast_server.scheduling.single_slot import WEEKDAYS, SingleSlotError, SingleSlotRequest, schedule_bulletin
from broadcast_server.scheduling.slot_reach import SlotReach, TargetIndex, slot_reach, slot_visible
from broadcast_server.scheduling.slot_words import ACTIVE, next_airings, places_of, repetition_vi, slot_state
from broadcast_server.statistics.periods import LOCAL_TZ, day_start, local_day

router = APIRouter()
Scheduler = Annotated[Principal, Depends(allowed(Action.SCHEDULE))]


@router.get("/schedule")
def week(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: ConsolePrincipal,
    week: str = "",
    day: int = -1,
    saved: int = 0,
) -> Response:
    today = local_day(runtime.clock.now())
    try:
        monday = week_start(date.fromisoformat(week)) if week else week_start(today)
    except ValueError:
        monday = week_start(today)
    if not 0 <= day <= 6:
        day = (today - monday).days if 0 <= (today - monday).days <= 6 else 0
    start, end = day_start(monday), day_start(monday + timedelta(days=7))
    found = airings(session, runtime.settings.public_url, start, end, visible_cluster_ids(session, principal))
    return page(
        request,
        "schedule.html",
        title="Lịch phát",
        days=week_days(monday, found),
        monday=monday,
        previous_week=monday - timedelta(days=7),
        next_week=monday + timedelta(days=7),
        selected=day,
        today=today,
        flash="Đã lưu lịch phát." if saved else None,
    )


def _form_page(request, session, principal, *, status_code=200, **values):
    defaults = {
        "bulletin_id": "",
        "start_date": "",
        "start_time": "",
        "weekdays": [],
        "until": "",
        "chosen": [],
        "repeat": "once",
        "problems": [],
        "result": None,
        "layer": "background",
    }
    approved = [b for b in bulletins_in_scope(session, principal, statuses=["approved"]) if b.priority != "emergency"]
    return page(
        request,
        "schedule_new.html",
        status_code=status_code,
        title="Lên lịch phát",
        bulletins=approved,
        choices=target_choices(session, principal),
        weekday_codes=list(zip(WEEKDAYS, WEEKDAY_NAMES_VI, strict=True)),
        rule_vi=rule_in_vietnamese,
        **{**defaults, **values},
    )


@router.get("/schedule/new")
def schedule_form(
    request: Request, session: SessionDep, runtime: RuntimeDep, principal: Scheduler, bulletin_id: str = ""
) -> Response:
    if bulletin_id:
        bulletin_for(session, principal, bulletin_id)
    local = (runtime.clock.now() + timedelta(minutes=10)).astimezone(LOCAL_TZ)
    return _form_page(
        request,
        session,
        principal,
        bulletin_id=bulletin_id,
        start_date=local.date().isoformat(),
        start_time=local.strftime("%H:%M"),
    )


@router.post("/schedule/new")
def schedule_save(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Scheduler,
    bulletin_id: Annotated[str, Form(max_length=64)] = "",
    start_date: Annotated[str, Form(max_length=10)] = "",
    start_time: Annotated[str, Form(max_length=5)] = "",
    repeat: Annotated[str, Form()] = "once",
    weekdays: Annotated[list[str], Form()] = [],  # noqa: B006
    until: Annotated[str, Form(max_length=10)] = "",
    layer: Annotated[str, Form()] = "background",
    unit_ids: Annotated[list[RowId], Form()] = [],  # noqa: B006
    action: Annotated[str, Form()] = "check",
) -> Response:
    """'check' shows the conflicts without saving; 'save' saves unless there are conflicts; 'accept' saves anyway."""
    values = {
        "bulletin_id": bulletin_id,
        "start_date": start_date,
        "start_time": start_time,
        "repeat": repeat,
        "weekdays": weekdays,
        "until": until,
        "chosen": unit_ids,
        "layer": layer,
    }
    if bulletin_id:
        bulletin_for(session, principal, bulletin_id)
    chosen = check_targets(session, principal, unit_ids)
    problems = []
    try:
        first_day = date.fromisoformat(start_date)
        at = time.fromisoformat(start_time)
    except ValueError:
        problems.append("ngày hoặc giờ phát không hợp lệ")
    last_day = None
    if until:
        try:
            last_day = date.fromisoformat(until)
        except ValueError:
            problems.append("ngày kết thúc không hợp lệ")
    if repeat == "weekly" and not weekdays:
        problems.append("hãy chọn các ngày trong tuần sẽ phát")
    if not bulletin_id:
        problems.append("hãy chọn bản tin")
    if problems:
        return _form_page(request, session, principal, status_code=422, problems=problems, **values)
    slot_request = SingleSlotRequest(
        bulletin_id=bulletin_id,
        start_date=first_day,
        start_time=at.replace(second=0, microsecond=0),
        unit_ids=chosen,
        weekdays=tuple(weekdays) if repeat == "weekly" else (),
        until=last_day if repeat == "weekly" else None,
        layer=layer,
    )
    try:
        result = schedule_bulletin(
            session,
            slot_request,
            public_url=runtime.settings.public_url,
            principal=principal,
            now=runtime.clock.now(),
            accept_conflicts=action == "accept",
            dry_run=action == "check",
            ip=client_ip(request),
        )
    except OutOfScope as exc:
        raise PageForbidden("Bạn chỉ được lên lịch cho địa bàn thuộc phạm vi của mình.") from exc
    except SingleSlotError as exc:
        return _form_page(request, session, principal, status_code=422, problems=exc.problems, **values)
    if not result.applied:
        return _form_page(request, session, principal, result=result, **values)
    session.commit()
    if runtime.pusher is not None:
        runtime.pusher.poke()  # the clusters get the new window now, not at the next hourly push
    monday = week_start(first_day)
    return RedirectResponse(
        f"/schedule?week={monday.isoformat()}&day={(first_day - monday).days}&saved=1", status_code=303
    )


def _slot_in_view(session: SessionDep, principal: Principal, slot_id: str) -> tuple[Slot, SlotReach]:
    """The slot and what it reaches, if it reaches (or names) a part of the caller's scope; else not theirs."""
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise PageNotFound("Không có khung giờ phát này.")
    reach = slot_reach(session, slot)
    visible_units = visible_unit_ids(session, principal)
    if visible_units is not None and not slot_visible(reach, visible_units, visible_cluster_ids(session, principal)):
        raise PageForbidden("Khung giờ này không phát ở địa bàn của bạn.")
    return slot, reach


@router.get("/schedule/slots")
def slot_list(
    request: Request, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal, show: str = "active"
) -> Response:
    """Every slot of the user's area: how it repeats, where, how many clusters; the ended and cancelled on demand."""
    index = TargetIndex.load(session)
    visible_units = visible_unit_ids(session, principal)
    visible = visible_cluster_ids(session, principal)
    titles = dict(session.exec(select(Programme.id, Programme.title)).all())
    now = runtime.clock.now()
    rows = []
    for slot in session.exec(select(Slot).order_by(Slot.start_time, Slot.id)):  # type: ignore[arg-type]
        reach = index.reach(slot)
        if not slot_visible(reach, visible_units, visible):
            continue
        start = date.fromisoformat(slot.start_date), time.fromisoformat(slot.start_time)
        first_local = datetime.combine(*start, LOCAL_TZ)
        until = date.fromisoformat(slot.until) if slot.until else None
        state = slot_state(slot.rule, first_local, until, slot.cancelled_at is not None, now)
        target = target_spec(slot.target)
        if show != "all" and state != ACTIVE:
            continue
        rows.append(
            SlotRow(
                id=slot.id,
                title=titles.get(slot.programme_id, slot.programme_id),
                repetition=repetition_vi(slot.rule),
                first_local=first_local,
                until=until,
                places=places_of(target.units, target.groups, target.clusters),
                reached=len(reach.reached),
                state=state,
            )
        )
    return page(request, "slots.html", title="Các khung giờ phát", rows=rows, show_all=show == "all")


@router.get("/schedule/slots/{slot_id}")
def slot_page(
    request: Request,
    slot_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: ConsolePrincipal,
    cancelled: int = 0,
) -> Response:
    """A slot: what it airs, when, where; the next airings; 'Hủy khung giờ' for those who may."""
    slot, reach = _slot_in_view(session, principal, slot_id)
    programme = session.get(Programme, slot.programme_id)
    items = session.exec(
        select(ProgrammeItem.title, ProgrammeItem.priority, Bulletin.kind, Bulletin.relay_duration_s)
        .join(Bulletin, Bulletin.id == ProgrammeItem.bulletin_id)  # type: ignore[arg-type]
        .where(ProgrammeItem.programme_id == slot.programme_id)
        .order_by(ProgrammeItem.position)  # type: ignore[arg-type]
    ).all()
    target = target_spec(slot.target)
    first_day, at = date.fromisoformat(slot.start_date), time.fromisoformat(slot.start_time)
    until = date.fromisoformat(slot.until) if slot.until else None
    view = SlotView(
        id=slot.id,
        title=programme.title if programme else slot.programme_id,
        repetition=repetition_vi(slot.rule),
        first_local=datetime.combine(first_day, at, LOCAL_TZ),
        until=until,
        layer=slot.layer,
        items=tuple(
            SlotItem(title, priority, relay_s if kind == BulletinKind.RELAY else None)
            for title, priority, kind, relay_s in items
        ),
        units=target.units,
        clusters=target.clusters,
        groups=target.groups,
        reached=len(reach.reached),
        upcoming=() if slot.cancelled_at else tuple(next_airings(slot.rule, first_day, at, until, runtime.clock.now())),
        cancelled_at=slot.cancelled_at,
    )
    can_cancel = (
        slot.cancelled_at is None
        and principal.can(Action.SCHEDULE)
        and cancel_refusal(session, principal, slot.id, reach) is None
    )
    return page(
        request,
        "slot.html",
        title=view.title,
        slot=view,
        can_cancel=can_cancel,
        flash="Đã hủy khung giờ này. Các cụm loa nhận lịch mới trong vài giây." if cancelled else None,
    )


@router.post("/schedule/slots/{slot_id}/cancel")
def slot_cancel(
    request: Request, slot_id: str, session: SessionDep, runtime: RuntimeDep, principal: Scheduler
) -> Response:
    _slot_in_view(session, principal, slot_id)
    try:
        cancel_slot(session, slot_id, principal=principal, now=runtime.clock.now(), ip=client_ip(request))
    except SlotNotFound as exc:
        raise PageNotFound("Không có khung giờ phát này.") from exc
    except OutOfScope as exc:
        raise PageForbidden("Khung giờ này phát cả ngoài địa bàn của bạn: chỉ cấp trên được hủy.") from exc
    except SlotAlreadyCancelled:
        return RedirectResponse(f"/schedule/slots/{slot_id}", status_code=303)
    session.commit()
    if runtime.pusher is not None:
        runtime.pusher.poke()  # the clusters drop its airings now, not at the next hourly push
    return RedirectResponse(f"/schedule/slots/{slot_id}?cancelled=1", status_code=303)


def _file_page(request: Request, *, status_code: int = 200, **values) -> Response:
    defaults = {"text": "", "problems": [], "result": None, "applied": None}
    return page(
        request,
        "schedule_file.html",
        status_code=status_code,
        title="Nạp tệp lịch phát",
        rule_vi=rule_in_vietnamese,
        **{**defaults, **values},
    )


@router.get("/schedule/file")
def schedule_file_form(request: Request, principal: Scheduler) -> Response:
    return _file_page(request)


@router.post("/schedule/file")
def schedule_file_send(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Scheduler,
    file: Annotated[UploadFile | None, File()] = None,
    text: Annotated[str, Form(max_length=MAX_SENT_FILE_BYTES)] = "",
    action: Annotated[str, Form()] = "check",
) -> Response:
    """'check' applies nothing and shows the changes and conflicts; 'save' applies unless there are conflicts;
    'accept' applies anyway. A file chosen in the form wins over the text box, which carries it to the next step."""
    data = text.encode()
    if file is not None and file.filename:
        data = file.file.read(MAX_SENT_FILE_BYTES + 1)
    shown = data.decode("utf-8", errors="replace")[:MAX_SENT_FILE_BYTES]
    if not data.strip():
        return _file_page(request, status_code=422, problems=["Hãy chọn tệp lịch hoặc dán nội dung tệp."])
    try:
        result = apply_sent_file(
            session,
            data,
            principal=principal,
            settings=runtime.settings,
            now=runtime.clock.now(),
            via="console",
            dry_run=action == "check",
            accept_conflicts=action == "accept",
            ip=client_ip(request),
        )
    except ScheduleFileError as exc:
        return _file_page(request, status_code=422, text=shown, problems=exc.problems)
    except FileOutsideScope as exc:
        problems = [f"{p}. Chỉ được nạp lịch cho địa bàn của mình." for p in exc.problems]
        return _file_page(request, status_code=403, text=shown, problems=problems)
    except NotPermitted:
        problems = ["Áp dụng tệp lịch là duyệt các bản tin trong tệp: cần người duyệt tin. Bạn vẫn kiểm tra được tệp."]
        return _file_page(request, status_code=403, text=shown, problems=problems)
    if not result.applied:
        return _file_page(request, text=shown, result=result)
    session.commit()
    if runtime.pusher is not None:
        runtime.pusher.poke()  # the clusters get the new windows now
    return _file_page(request, result=result, applied=True)
