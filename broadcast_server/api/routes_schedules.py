"""/api/v1/schedules: the stored schedule as a schedule file, its slots, what a cluster will play when.

Schedule files are applied as `bcast schedule apply` does (POST, items of text or named bulletins, inside the
account's area), one approved bulletin is scheduled as the console's form does, slots are listed and cancelled.
Problems are told in English here, in Vietnamese in the CLI and the console.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import OutOfScope, cluster_in_scope, visible_cluster_ids, visible_unit_ids
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import RowId
from broadcast_server.models import Cluster, Programme, Slot
from broadcast_server.scheduling.cancel import SlotAlreadyCancelled, SlotNotFound, cancel_slot
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.preview import preview
from broadcast_server.scheduling.schedule_file import ScheduleFileError
from broadcast_server.scheduling.sent_file import MAX_SENT_FILE_BYTES, FileOutsideScope, apply_sent_file
from broadcast_server.scheduling.single_slot import SingleSlotError, SingleSlotRequest, schedule_bulletin
from broadcast_server.scheduling.slot_reach import TargetIndex, slot_visible
from speaker_agent.playout.runner import item_command_id

router = APIRouter(prefix="/schedules", tags=["schedules"])
MAX_PREVIEW = timedelta(days=31)
Scheduler = Annotated[Principal, Depends(require(Action.SCHEDULE))]


class PlannedPlayOut(BaseModel):
    airing_id: str = Field(description="'<slot>@<UTC start>#<item>': what the cluster's reports will name.")
    slot_id: str
    title: str
    start_at: datetime = Field(description="When the item will start (UTC), after items queued before it.")
    end_at: datetime
    due_at: datetime = Field(description="The occurrence's scheduled start (UTC).")
    audio_sha256: str | None = Field(description="The file it plays; null for a live relay.")
    stream_url: str | None = Field(default=None, description="The stream a live relay item relays (tiếp sóng).")
    duration_s: float


class SlotOut(BaseModel):
    id: str
    programme_id: str
    title: str = Field(description="The programme's title.")
    start_date: str = Field(description="First local date (Asia/Ho_Chi_Minh), YYYY-MM-DD.")
    start_time: str = Field(description="Local time, HH:MM.")
    rule: str | None = Field(description="RFC 5545 recurrence rule; null: once.")
    until: str | None = Field(description="Last local date of a recurring slot.")
    layer: str
    target: dict = Field(description="Units by path, single clusters and groups, as the schedule file names them.")
    clusters: int = Field(description="Clusters the target reaches today.")
    cancelled_at: datetime | None


def _slot_out(session, slot: Slot, index: TargetIndex | None = None) -> SlotOut:
    """The slot as the API shows it; pass `index` when answering many slots (the tree is loaded once)."""
    programme = session.get(Programme, slot.programme_id)
    return SlotOut(
        id=slot.id,
        programme_id=slot.programme_id,
        title=programme.title if programme else slot.programme_id,
        start_date=slot.start_date,
        start_time=slot.start_time,
        rule=slot.rule,
        until=slot.until,
        layer=slot.layer,
        target=slot.target,
        clusters=len((index or TargetIndex.load(session)).reach(slot).reached),
        cancelled_at=slot.cancelled_at,
    )


class SlotCreate(BaseModel):
    bulletin_id: str = Field(min_length=1, max_length=64, description="An approved, non-emergency bulletin.")
    start_date: date = Field(description="Local date (Asia/Ho_Chi_Minh) of the first airing.")
    start_time: time = Field(description="Local time, HH:MM (seconds are dropped).")
    weekdays: list[Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]] = Field(
        default_factory=list, max_length=7, description="Weekly on these days; empty: once."
    )
    until: date | None = Field(default=None, description="Last local day of a weekly slot.")
    layer: Literal["background", "insert"] = "background"
    unit_ids: list[RowId] = Field(min_length=1, max_length=10_000, description="Units whose clusters play it.")
    accept_conflicts: bool = Field(default=False, description="Save even if it overlaps other slots.")
    dry_run: bool = Field(default=False, description="Check and report conflicts; save nothing.")


class ConflictOut(BaseModel):
    first_slot: str
    second_slot: str
    rule: str = Field(description="What the clusters' planner does about the overlap.")
    clusters: int
    first_at: datetime
    overlap_s: float


class SlotCreated(BaseModel):
    applied: bool = Field(description="False for a dry run, or when conflicts were found and not accepted.")
    slot: SlotOut | None
    clusters: int = Field(description="Clusters the target reaches.")
    conflicts: list[ConflictOut]


@router.post(
    "/slots",
    status_code=status.HTTP_201_CREATED,
    response_model=SlotCreated,
    responses={200: {"model": SlotCreated}, 403: {}, 409: {"model": SlotCreated}, 422: {}},
)
def create_slot(
    body: SlotCreate, session: SessionDep, runtime: RuntimeDep, principal: Scheduler, request: Request
) -> SlotCreated | JSONResponse:
    """Schedule one approved bulletin once or weekly on units of the caller's scope, as the console's form does.

    201 saved; 200 a dry run; 409 overlaps with other slots, not saved unless accept_conflicts (the answer
    lists them with the rule the clusters will apply); 422 with every problem found; 403 out of scope.
    """
    slot_request = SingleSlotRequest(
        bulletin_id=body.bulletin_id,
        start_date=body.start_date,
        start_time=body.start_time.replace(second=0, microsecond=0, tzinfo=None),
        unit_ids=tuple(dict.fromkeys(body.unit_ids)),
        weekdays=tuple(dict.fromkeys(body.weekdays)),
        until=body.until,
        layer=body.layer,
    )
    try:
        result = schedule_bulletin(
            session,
            slot_request,
            public_url=runtime.settings.public_url,
            principal=principal,
            now=runtime.clock.now(),
            accept_conflicts=body.accept_conflicts,
            dry_run=body.dry_run,
            ip=client_ip(request),
        )
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except SingleSlotError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    conflicts = [ConflictOut(**vars(c)) for c in result.conflicts]
    if not result.applied:
        answer = SlotCreated(applied=False, slot=None, clusters=result.clusters, conflicts=conflicts)
        code = status.HTTP_200_OK if body.dry_run else status.HTTP_409_CONFLICT
        return JSONResponse(answer.model_dump(mode="json"), status_code=code)
    session.commit()
    if runtime.pusher is not None:
        runtime.pusher.poke()
    slot = session.get(Slot, result.slot_id)
    assert slot is not None
    return SlotCreated(applied=True, slot=_slot_out(session, slot), clusters=result.clusters, conflicts=conflicts)


class ScheduleApplied(BaseModel):
    applied: bool = Field(description="False for a dry run, or when conflicts were found and not accepted.")
    created: int
    updated: int
    unchanged: int
    conflicts: list[ConflictOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleApplied,
    responses={200: {"model": ScheduleApplied}, 403: {}, 409: {"model": ScheduleApplied}, 413: {}, 422: {}},
)
def apply_file(
    body: Annotated[bytes, Body(media_type="application/yaml", description="A schedule file (docs/scheduling.md).")],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Scheduler,
    request: Request,
    dry_run: bool = False,
    accept_conflicts: bool = False,
) -> ScheduleApplied | JSONResponse:
    """Apply a schedule file as `bcast schedule apply` does: all of it or nothing, conflicts before saving.

    201 something changed; 200 a dry run or nothing to change; 409 overlapping programmes, nothing saved
    unless accept_conflicts; 422 every problem, each with its place in the file; 403 where the file reaches
    beyond the account's area (its targets, or stored slots, programmes and groups it would change), or when
    applying (not a dry run) without the right to approve bulletins: the file's text items go on air. Items
    are text or `bulletin: <id>` (an approved bulletin of the area, e.g. an uploaded recording): an
    `audio_file` is read from the server's own disk, so such files are applied there with the CLI.
    """
    try:
        result = apply_sent_file(
            session,
            body,
            principal=principal,
            settings=runtime.settings,
            now=runtime.clock.now(),
            via="api",
            dry_run=dry_run,
            accept_conflicts=accept_conflicts,
            ip=client_ip(request),
        )
    except ScheduleFileError as exc:
        too_large = len(body) > MAX_SENT_FILE_BYTES
        code = status.HTTP_413_CONTENT_TOO_LARGE if too_large else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, exc.problems_en) from None
    except FileOutsideScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, [p.english for p in exc.problems]) from None
    answer = ScheduleApplied(
        applied=result.applied,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        conflicts=[ConflictOut(**vars(c)) for c in result.conflicts],
    )
    if not result.applied:
        code = status.HTTP_200_OK if dry_run else status.HTTP_409_CONFLICT
        return JSONResponse(answer.model_dump(mode="json"), status_code=code)
    session.commit()
    if not (result.created or result.updated):
        return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    if runtime.pusher is not None:
        runtime.pusher.poke()
    return answer


@router.get("/slots", response_model=list[SlotOut])
def list_slots(session: SessionDep, principal: PrincipalDep, include_cancelled: bool = False) -> list[SlotOut]:
    """The slots of the caller's area (cancelled ones too with include_cancelled=true), by id: those that play
    on one of its clusters or name only units of it, as the console lists them."""
    query = select(Slot).order_by(Slot.id)
    if not include_cancelled:
        query = query.where(Slot.cancelled_at.is_(None))  # type: ignore[union-attr]
    index = TargetIndex.load(session)
    visible_units, visible = visible_unit_ids(session, principal), visible_cluster_ids(session, principal)
    return [
        _slot_out(session, slot, index)
        for slot in session.exec(query)
        if slot_visible(index.reach(slot), visible_units, visible)
    ]


@router.post("/slots/{slot_id}/cancel", response_model=SlotOut, responses={403: {}, 404: {}, 409: {}})
def cancel(slot_id: str, session: SessionDep, runtime: RuntimeDep, principal: Scheduler, request: Request) -> SlotOut:
    """Cancel a slot: clusters get a window without its airings still to come within seconds; aired ones stay.

    The whole target must lie in the caller's scope (403). A slot already cancelled: 409.
    """
    try:
        cancel_slot(session, slot_id, principal=principal, now=runtime.clock.now(), ip=client_ip(request))
    except SlotNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except SlotAlreadyCancelled as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    if runtime.pusher is not None:
        runtime.pusher.poke()
    slot = session.get(Slot, slot_id)
    assert slot is not None
    return _slot_out(session, slot)


@router.get("", response_class=Response, responses={200: {"content": {"application/yaml": {}}}})
def export(session: SessionDep, principal: PrincipalDep) -> Response:
    """The whole stored schedule as a schedule file (YAML), as `bcast schedule export` writes it."""
    return Response(export_schedule(session), media_type="application/yaml; charset=utf-8")


@router.get("/preview", response_model=list[PlannedPlayOut], responses={403: {}, 404: {}, 422: {}})
def preview_cluster(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    cluster_id: Annotated[str, Query(min_length=1, max_length=64)],
    start: Annotated[AwareDatetime, Query(description="ISO 8601 with a time zone, e.g. 2026-11-23T05:00+07:00")],
    end: Annotated[AwareDatetime, Query(description="After start, at most 31 days later.")],
) -> list[PlannedPlayOut]:
    """What one cluster will play between start and end, through the agents' own planner (nothing interrupting)."""
    if end <= start or end - start > MAX_PREVIEW:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start, at most 31 days later")
    if session.get(Cluster, cluster_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"cluster {cluster_id!r} does not exist")
    if not cluster_in_scope(session, principal, cluster_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"cluster {cluster_id!r} is outside your scope")
    plays = preview(session, runtime.settings.public_url, [cluster_id], start, end)[cluster_id]
    return [
        PlannedPlayOut(
            airing_id=item_command_id(p.key),
            slot_id=p.entry_id.split("@")[0],
            title=p.title,
            start_at=p.start,
            end_at=p.end,
            due_at=p.due,
            audio_sha256=p.audio.sha256 if p.audio is not None else None,
            stream_url=p.stream.url if p.stream is not None else None,
            duration_s=(p.end - p.start).total_seconds(),
        )
        for p in plays
    ]
