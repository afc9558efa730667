"""Cancel a slot: its airings still to come leave the clusters' next windows; what already aired stays counted.

The slot row stays (with `cancelled_at`), so reports and statistics of its past airings keep their slot, and
applying a schedule file that still holds the slot brings it back, as the file is the source of truth for
what it names. An item playing at that moment plays to its end: the agent drops only what has not begun.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import OutOfScope, common_unit, target_outside_scope
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.models import Programme, Slot
from broadcast_server.scheduling.slot_reach import SlotReach, slot_reach


class SlotNotFound(LookupError):
    """No slot has this id."""


class SlotAlreadyCancelled(ValueError):
    """The slot was cancelled before; `cancelled_at` says when."""

    def __init__(self, slot_id: str, cancelled_at: datetime) -> None:
        self.cancelled_at = cancelled_at
        super().__init__(f"slot {slot_id!r} was already cancelled at {cancelled_at.isoformat()}")


@dataclass(frozen=True)
class CancelledSlot:
    slot_id: str
    title: str
    clusters: int
    cancelled_at: datetime


def cancel_refusal(session: Session, principal: Principal, slot_id: str, reach: SlotReach) -> str | None:
    """Why the principal may not cancel the slot (its target reaches beyond their scope), or None if they may."""
    if principal.scope_unit_id is not None and not (reach.unit_ids or reach.cluster_ids):
        return f"slot {slot_id!r} names no unit or cluster known here: only an unscoped user may cancel it"
    return target_outside_scope(session, principal, reach.unit_ids, reach.cluster_ids)


def cancel_slot(
    session: Session,
    slot_id: str,
    *,
    principal: Principal | None = None,
    now: datetime | None = None,
    ip: str | None = None,
) -> CancelledSlot:
    """Mark the slot cancelled and audit it, in the caller's transaction; the caller then pokes the pusher.

    A principal may cancel only a slot whose whole target lies in its scope: a commune cannot take a
    district-wide programme off the air for the district.
    """
    now = now or utcnow()
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise SlotNotFound(f"slot {slot_id!r} does not exist")
    reach = slot_reach(session, slot)
    if principal is not None:
        refusal = cancel_refusal(session, principal, slot_id, reach)
        if refusal:
            raise OutOfScope(refusal)
    if slot.cancelled_at is not None:
        raise SlotAlreadyCancelled(slot_id, slot.cancelled_at)
    programme = session.get(Programme, slot.programme_id)
    title = programme.title if programme else slot.programme_id
    slot.cancelled_at = now
    slot.updated_at = now
    session.add(slot)
    session.flush()
    record(
        session,
        principal=principal,
        action="schedule.cancel",
        object_type="slot",
        object_id=slot_id,
        detail={"programme": slot.programme_id, "title": title, "clusters": len(reach.reached)},
        ip=ip,
        unit_id=common_unit(session, reach.unit_ids),
    )
    return CancelledSlot(slot_id, title, len(reach.reached), now)
