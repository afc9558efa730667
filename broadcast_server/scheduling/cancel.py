"""Cancel a slot: its airings still to come leave the clusters' next windows; what already aired stays counted.

The slot row stays (with `cancelled_at`), so reports and statistics of its past airings keep their slot, and
applying a schedule file that still holds the slot brings it back, as the file is the source of truth for
what it names. An item playing at that moment plays to its end: the agent drops only what has not begun.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import OutOfScope, common_unit, target_outside_scope
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.domain.targeting import UnitRef
from broadcast_server.models import Programme, Slot, TargetGroup
from broadcast_server.scheduling.catalog import target_spec
from broadcast_server.scheduling.schedule_file import TargetSpec
from broadcast_server.scheduling.targets import resolve, unit_paths
from broadcast_server.services.tree_query import load_cluster_units, load_units


class SlotNotFound(LookupError):
    """No slot has this id."""


class SlotAlreadyCancelled(ValueError):
    """The slot was cancelled before; `cancelled_at` says when."""

    def __init__(self, slot_id: str, cancelled_at: datetime) -> None:
        self.cancelled_at = cancelled_at
        super().__init__(f"slot {slot_id!r} was already cancelled at {cancelled_at.isoformat()}")


@dataclass(frozen=True)
class SlotReach:
    """The units and single clusters a slot's target names (groups opened), and the clusters it reaches today."""

    unit_ids: tuple[int, ...]
    cluster_ids: tuple[str, ...]
    reached: frozenset[str]


@dataclass(frozen=True)
class CancelledSlot:
    slot_id: str
    title: str
    clusters: int
    cancelled_at: datetime


@dataclass(frozen=True)
class TargetIndex:
    """The tree, the clusters and the named groups, loaded once to resolve many slots' targets."""

    units: Mapping[int, UnitRef]
    paths: Mapping[str, int]
    cluster_units: Mapping[str, int]
    groups: Mapping[str, TargetSpec]

    @classmethod
    def load(cls, session: Session) -> TargetIndex:
        units = load_units(session)
        groups = {g.name: target_spec(g.target) for g in session.exec(select(TargetGroup))}
        return cls(units, unit_paths(units), load_cluster_units(session), groups)

    def reach(self, slot: Slot) -> SlotReach:
        """What a stored slot targets, for scope checks: a name the tree no longer knows is left out."""
        return self.reach_target(target_spec(slot.target))

    def reach_target(self, target: TargetSpec, groups: Mapping[str, TargetSpec] | None = None) -> SlotReach:
        """What a target reaches, its groups looked up in `groups` (a file's own) or else the stored ones."""
        groups = self.groups if groups is None else groups
        named = [target, *(groups[name] for name in target.groups if name in groups)]
        unit_ids = [self.paths[key] for spec in named for key in _unit_keys(spec) if key in self.paths]
        cluster_ids = [c for spec in named for c in spec.clusters if c in self.cluster_units]
        reached = resolve(
            target,
            "target",
            units=self.units,
            paths=self.paths,
            cluster_units=self.cluster_units,
            groups=groups,
            problems=[],
        )
        return SlotReach(tuple(dict.fromkeys(unit_ids)), tuple(dict.fromkeys(cluster_ids)), reached)


def slot_reach(session: Session, slot: Slot) -> SlotReach:
    """What one slot targets (loads the tree; use TargetIndex for many)."""
    return TargetIndex.load(session).reach(slot)


def _unit_keys(spec: TargetSpec) -> list[str]:
    return ["/".join(part.strip() for part in path.split("/")) for path in spec.units]


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
