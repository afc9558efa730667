"""/api/v1/schedules: the stored schedule as a schedule file, its slots, what a cluster will play when.

Slots are written with schedule files (`bcast schedule apply`) and the console, which tell a file's problems
in Vietnamese to the people who write them; the API lists them and cancels one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import OutOfScope, cluster_in_scope
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.models import Cluster, Programme, Slot
from broadcast_server.scheduling.cancel import SlotAlreadyCancelled, SlotNotFound, cancel_slot, slot_reach
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.preview import preview
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
    audio_sha256: str
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


def _slot_out(session, slot: Slot) -> SlotOut:
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
        clusters=len(slot_reach(session, slot).reached),
        cancelled_at=slot.cancelled_at,
    )


@router.get("/slots", response_model=list[SlotOut])
def list_slots(session: SessionDep, principal: PrincipalDep, include_cancelled: bool = False) -> list[SlotOut]:
    """Every slot of the stored schedule (cancelled ones too with include_cancelled=true), by id."""
    query = select(Slot).order_by(Slot.id)
    if not include_cancelled:
        query = query.where(Slot.cancelled_at.is_(None))  # type: ignore[union-attr]
    return [_slot_out(session, slot) for slot in session.exec(query)]


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
            audio_sha256=p.audio.sha256,
            duration_s=p.audio.duration_s,
        )
        for p in plays
    ]
