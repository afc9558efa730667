"""Which reporting unit (commune, or district without communes) each cluster counts under, and its label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sqlmodel import Session, select

from broadcast_server.domain.targeting import UnitRef, reporting_unit
from broadcast_server.models import AdminUnit, Cluster


def cluster_reporting_units(session: Session) -> tuple[dict[str, int], dict[int, UnitRef]]:
    """(cluster id -> reporting unit id, every unit including retired ones).

    Plain column reads, no ORM objects: a province has tens of thousands of villages and clusters.
    """
    units = {
        row[0]: UnitRef(*row)
        for row in session.exec(select(AdminUnit.id, AdminUnit.parent_id, AdminUnit.name, AdminUnit.level))
    }
    cache: dict[int, int] = {}
    result: dict[str, int] = {}
    for cluster_id, unit_id in session.exec(select(Cluster.id, Cluster.unit_id)):
        if unit_id not in cache:
            cache[unit_id] = reporting_unit(units, unit_id).id
        result[cluster_id] = cache[unit_id]
    return result, units


def unit_labels(units: Mapping[int, UnitRef], unit_ids: Iterable[int]) -> dict[int, str]:
    """Each unit's name; where two of them share a name, the parent's name is added in brackets."""
    ids = sorted(set(unit_ids))
    counts = Counter(units[u].name for u in ids)
    labels: dict[int, str] = {}
    for unit_id in ids:
        unit = units[unit_id]
        parent = units.get(unit.parent_id) if unit.parent_id is not None else None
        labels[unit_id] = f"{unit.name} ({parent.name})" if counts[unit.name] > 1 and parent else unit.name
    return labels
