"""Bulletins a console user may see, newest first, optionally by status."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.models import Bulletin


def _scoped(query, session: Session, principal: Principal):
    visible = visible_unit_ids(session, principal)
    if visible is not None:
        query = query.where(Bulletin.owner_unit_id.in_(sorted(visible)))  # type: ignore[attr-defined]
    return query


def bulletins_in_scope(
    session: Session,
    principal: Principal,
    *,
    statuses: Iterable[str] | None = None,
    priority: str | None = None,
    limit: int = 200,
) -> list[Bulletin]:
    query = _scoped(select(Bulletin), session, principal)
    if statuses is not None:
        query = query.where(Bulletin.status.in_(list(statuses)))  # type: ignore[attr-defined]
    if priority is not None:
        query = query.where(Bulletin.priority == priority)
    return list(session.exec(query.order_by(Bulletin.created_at.desc()).limit(limit)))  # type: ignore[attr-defined]


def count_in_scope(session: Session, principal: Principal, statuses: Iterable[str]) -> int:
    query = _scoped(select(func.count()).select_from(Bulletin), session, principal)
    query = query.where(Bulletin.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return int(session.exec(query).one())
