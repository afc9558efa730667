"""What a slot reaches (its units, single clusters and groups against today's tree) and who may see it.

Scope checks of cancelling, of schedule files sent by an account with an area, and of the lists of slots
(console, API) all start here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, select

from broadcast_server.domain.targeting import UnitRef
from broadcast_server.models import Slot, TargetGroup
from broadcast_server.scheduling.catalog import target_spec
from broadcast_server.scheduling.schedule_file import TargetSpec
from broadcast_server.scheduling.targets import resolve, unit_paths
from broadcast_server.services.tree_query import load_cluster_units, load_units


@dataclass(frozen=True)
class SlotReach:
    """The units and single clusters a slot's target names (groups opened), and the clusters it reaches today."""

    unit_ids: tuple[int, ...]
    cluster_ids: tuple[str, ...]
    reached: frozenset[str]


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


def slot_visible(reach: SlotReach, visible_units: set[int] | None, visible_clusters: set[str] | None) -> bool:
    """Whether a user of that scope sees the slot: it plays on one of their clusters, or names only their area."""
    if visible_units is None or visible_clusters is None:
        return True
    if reach.reached & visible_clusters:
        return True
    named = bool(reach.unit_ids or reach.cluster_ids)
    return named and set(reach.unit_ids) <= visible_units and set(reach.cluster_ids) <= visible_clusters
