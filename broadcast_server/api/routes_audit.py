"""/api/v1/audit: read the audit log of the caller's subtree (there is no way to change it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from broadcast_server.api.auth import PrincipalDep
from broadcast_server.api.deps import SessionDep
from broadcast_server.api.schemas import MAX_ROW_ID, AuditEntryOut
from broadcast_server.audit.log import entries

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditEntryOut])
def audit(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="Page back: entries older than this id.")
    ] = None,
    action: Annotated[str | None, Query(max_length=64, examples=["bulletin.approve"])] = None,
) -> list[AuditEntryOut]:
    """Newest first: who did what, when, from where, in the caller's part of the tree."""
    return [
        AuditEntryOut(**e.model_dump())
        for e in entries(session, principal, limit=limit, before_id=before_id, action=action)
    ]
