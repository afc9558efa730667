"""Write and read the audit log. There is no update or delete here on purpose: entries are append-only.

On PostgreSQL a trigger (migration 0004) refuses UPDATE, DELETE and TRUNCATE of ``audit_entry`` too, so
not even a bug elsewhere in the server can rewrite history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.models import AuditEntry

SYSTEM_ACTOR = "system"
MAX_ENTRIES = 1000


def record(
    session: Session,
    *,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: str | None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    unit_id: int | None = None,
    actor: str | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction; `unit_id` (the unit concerned) defaults to the actor's scope.

    `principal` None is the server itself (``system``); `actor` names an actor without a principal, such as
    the username of a failed sign-in.
    """
    entry = AuditEntry(
        actor=(actor or (principal.username if principal else SYSTEM_ACTOR))[:64],
        user_id=principal.user_id if principal else None,
        role=principal.role.value if principal else None,
        via=principal.via if principal else SYSTEM_ACTOR,
        ip=ip[:64] if ip else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64] if object_id is not None else None,
        detail=detail,
        unit_id=unit_id if unit_id is not None else (principal.scope_unit_id if principal else None),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    principal: Principal,
    *,
    limit: int = 100,
    before_id: int | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The newest entries the principal may read: those of its subtree and its own; unscoped: all."""
    query = select(AuditEntry)
    visible = visible_unit_ids(session, principal)
    if visible is not None:
        mine = AuditEntry.user_id == principal.user_id if principal.user_id is not None else False
        query = query.where(or_(AuditEntry.unit_id.in_(sorted(visible)), mine))  # type: ignore[union-attr]
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)  # type: ignore[operator]
    if action:
        query = query.where(AuditEntry.action == action)
    limit = max(1, min(limit, MAX_ENTRIES))
    return list(session.exec(query.order_by(AuditEntry.id.desc()).limit(limit)))  # type: ignore[union-attr]
