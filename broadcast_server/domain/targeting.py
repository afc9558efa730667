"""Which clusters a target reaches, and which unit a cluster is counted under in reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broadcast_server.domain.admin_tree import COMMUNE, DISTRICT


@dataclass(frozen=True)
class UnitRef:
    """A unit as the pure core sees it: enough to walk the tree, nothing stored."""

    id: int
    parent_id: int | None
    name: str
    level: str


class UnknownTarget(ValueError):
    """A target names units or clusters that do not exist."""

    def __init__(self, unit_ids: Iterable[int] = (), cluster_ids: Iterable[str] = ()) -> None:
        self.unit_ids = sorted(unit_ids)
        self.cluster_ids = sorted(cluster_ids)
        parts = []
        if self.unit_ids:
            parts.append(f"unknown unit ids {self.unit_ids}")
        if self.cluster_ids:
            parts.append(f"unknown cluster ids {self.cluster_ids[:10]}")
        super().__init__("; ".join(parts) or "empty target")


def descendants(units: Mapping[int, UnitRef], roots: Iterable[int]) -> set[int]:
    """The given units and every unit below them, at any depth."""
    children: dict[int | None, list[int]] = {}
    for unit in units.values():
        children.setdefault(unit.parent_id, []).append(unit.id)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        unit_id = stack.pop()
        if unit_id in found:
            continue
        found.add(unit_id)
        stack.extend(children.get(unit_id, ()))
    return found


def resolve_target(
    units: Mapping[int, UnitRef],
    cluster_units: Mapping[str, int],
    unit_ids: Iterable[int],
    cluster_ids: Iterable[str],
) -> list[str]:
    """Cluster ids reached by the union of some units (with all below them) and single clusters."""
    unit_ids, cluster_ids = list(unit_ids), list(cluster_ids)
    missing_units = {u for u in unit_ids if u not in units}
    missing_clusters = {c for c in cluster_ids if c not in cluster_units}
    if missing_units or missing_clusters:
        raise UnknownTarget(missing_units, missing_clusters)
    if not unit_ids and not cluster_ids:
        raise UnknownTarget()
    reached = descendants(units, unit_ids)
    chosen = {c for c, u in cluster_units.items() if u in reached}
    chosen.update(cluster_ids)
    return sorted(chosen)


def reporting_unit(units: Mapping[int, UnitRef], unit_id: int) -> UnitRef:
    """The unit a cluster is counted under: its commune, or its district where there is no commune level."""
    chain = []
    current: int | None = unit_id
    while current is not None:
        unit = units[current]
        chain.append(unit)
        current = unit.parent_id
    for level in (COMMUNE, DISTRICT):
        for unit in chain:
            if unit.level == level:
                return unit
    return chain[-1]
