"""The part of the tree a console user works in: communes to choose as targets, bulletins it may open.

Every check goes through `accounts.scope`, the same rules the API applies; a page never trusts an id
from a form without asking it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import unit_in_scope, visible_unit_ids
from broadcast_server.console.access import PageForbidden, PageNotFound
from broadcast_server.domain.admin_tree import name_sort_key
from broadcast_server.models import Bulletin
from broadcast_server.statistics.grouping import cluster_reporting_units, unit_labels


@dataclass(frozen=True)
class TargetChoice:
    """A commune (or district without communes) a form can target, with its cluster count."""

    unit_id: int
    name: str
    clusters: int


def target_choices(session: Session, principal: Principal) -> list[TargetChoice]:
    """The reporting units with clusters that the principal may target, in Vietnamese order."""
    unit_of, units = cluster_reporting_units(session)
    visible = visible_unit_ids(session, principal)
    counts: dict[int, int] = {}
    for unit_id in unit_of.values():
        if visible is None or unit_id in visible:
            counts[unit_id] = counts.get(unit_id, 0) + 1
    labels = unit_labels(units, counts)
    return sorted((TargetChoice(u, labels[u], n) for u, n in counts.items()), key=lambda c: name_sort_key(c.name))


def check_targets(session: Session, principal: Principal, unit_ids: Iterable[int]) -> tuple[int, ...]:
    """The chosen unit ids, each inside the principal's scope; a 403 page otherwise."""
    chosen = tuple(dict.fromkeys(unit_ids))
    for unit_id in chosen:
        if not unit_in_scope(session, principal, unit_id):
            raise PageForbidden("Bạn chỉ được chọn địa bàn thuộc phạm vi của mình.")
    return chosen


def bulletin_visible(session: Session, principal: Principal, bulletin: Bulletin) -> bool:
    visible = visible_unit_ids(session, principal)
    if visible is None:
        return True
    owner = getattr(bulletin, "owner_unit_id", None)
    return owner is not None and owner in visible


def bulletin_for(session: Session, principal: Principal, bulletin_id: str) -> Bulletin:
    """The bulletin, if it exists and belongs to the principal's part of the tree."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise PageNotFound("Không có bản tin này.")
    if not bulletin_visible(session, principal, bulletin):
        raise PageForbidden("Bản tin này thuộc địa bàn khác, bạn không được xem.")
    return bulletin
