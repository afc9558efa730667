"""Relay bulletins (tiếp sóng): a live stream relayed for a while, approved like any other bulletin.

A relay has no audio file: its bulletin holds the stream's address and how long to relay it, and its
broadcasts send `play.stream` instead of `play.audio` (docs/protocol.md). Approval is the same as for a
text or a recording: what a commune relays is content the district answers for (Thông tư 39).
"""

from __future__ import annotations

from sqlmodel import Session

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.domain.relay import relay_duration_problem, stream_url_problem
from broadcast_server.models import Bulletin, BulletinKind, BulletinStatus, Priority
from broadcast_server.services.bulletins import (
    BulletinError,
    BulletinStateError,
    add_new_bulletin,
    audit_step,
    bulletin_for_step,
    check_new_owner,
)


def _checked(stream_url: str, duration_s: int) -> str:
    url = stream_url.strip()
    problem = stream_url_problem(url) or relay_duration_problem(duration_s)
    if problem is not None:
        raise BulletinError(problem)
    return url


def create_relay_bulletin(
    session: Session,
    *,
    title: str,
    stream_url: str,
    duration_s: int,
    category: str | None = None,
    priority: str = Priority.NORMAL.value,
    principal: Principal | None = None,
    owner_unit_id: int | None = None,
    ip: str | None = None,
) -> Bulletin:
    """Store a draft relay bulletin of `stream_url` for `duration_s` seconds; nothing is fetched from the stream."""
    if priority not in {p.value for p in Priority}:
        raise BulletinError(f"unknown priority {priority!r}")
    if not title.strip():
        raise BulletinError("title is empty")
    url = _checked(stream_url, duration_s)
    owner_unit_id = check_new_owner(session, principal, owner_unit_id)
    bulletin = Bulletin(
        title=title.strip(),
        kind=BulletinKind.RELAY.value,
        stream_url=url,
        relay_duration_s=duration_s,
        category=category or None,
        priority=priority,
        status=BulletinStatus.DRAFT.value,
        owner_unit_id=owner_unit_id,
        created_by=principal.user_id if principal else None,
    )
    return add_new_bulletin(session, bulletin, principal, ip=ip)


def edit_relay_bulletin(
    session: Session,
    bulletin_id: str,
    principal: Principal | None,
    *,
    title: str | None = None,
    stream_url: str | None = None,
    duration_s: int | None = None,
    category: str | None = None,
    ip: str | None = None,
) -> Bulletin:
    """Change a draft, returned or edited relay bulletin (None keeps a field); a returned one becomes edited."""
    bulletin = bulletin_for_step(session, bulletin_id, principal, Action.DRAFT_BULLETIN)
    if bulletin.status not in {BulletinStatus.DRAFT, BulletinStatus.RETURNED, BulletinStatus.EDITED}:
        raise BulletinStateError(f"bulletin {bulletin_id!r} is {bulletin.status}; only drafts and returned ones change")
    if bulletin.kind != BulletinKind.RELAY:
        raise BulletinError(f"bulletin {bulletin_id!r} is not a relay")
    if title is not None:
        if not title.strip():
            raise BulletinError("title is empty")
        bulletin.title = title.strip()
    url = _checked(
        stream_url if stream_url is not None else bulletin.stream_url or "",
        duration_s if duration_s is not None else bulletin.relay_duration_s or 0,
    )
    bulletin.stream_url = url
    if duration_s is not None:
        bulletin.relay_duration_s = duration_s
    if category is not None:
        bulletin.category = category or None
    if bulletin.status == BulletinStatus.RETURNED:
        bulletin.status = BulletinStatus.EDITED.value
    session.add(bulletin)
    audit_step(session, bulletin, principal, "edit", ip=ip)
    return bulletin
