"""/api/v1/schedules: the stored schedule as a schedule file, and what a cluster will play when.

Read-only. Schedules are written with schedule files (`bcast schedule apply`) and the console, which tell a
file's problems in Vietnamese to the people who write them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from broadcast_server.accounts.scope import cluster_in_scope
from broadcast_server.api.auth import PrincipalDep
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.models import Cluster
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.preview import preview
from speaker_agent.playout.runner import item_command_id

router = APIRouter(prefix="/schedules", tags=["schedules"])
MAX_PREVIEW = timedelta(days=31)


class PlannedPlayOut(BaseModel):
    airing_id: str = Field(description="'<slot>@<UTC start>#<item>': what the cluster's reports will name.")
    slot_id: str
    title: str
    start_at: datetime = Field(description="When the item will start (UTC), after items queued before it.")
    end_at: datetime
    due_at: datetime = Field(description="The occurrence's scheduled start (UTC).")
    audio_sha256: str
    duration_s: float


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
