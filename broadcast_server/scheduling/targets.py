"""Schedule targets (unit paths, clusters, groups) resolved against the administrative tree."""

from __future__ import annotations

from collections.abc import Mapping

from broadcast_server.domain.targeting import UnitRef, descendants
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.schedule_file import TargetSpec


def unit_paths(units: Mapping[int, UnitRef]) -> dict[str, int]:
    """'Province/District/Commune/...' for every unit, at any depth."""
    paths: dict[int, str] = {}

    def path_of(unit_id: int) -> str:
        if unit_id not in paths:
            unit = units[unit_id]
            parent = path_of(unit.parent_id) + "/" if unit.parent_id is not None and unit.parent_id in units else ""
            paths[unit_id] = parent + unit.name
        return paths[unit_id]

    return {path_of(unit_id): unit_id for unit_id in units}


def resolve(
    target: TargetSpec,
    where: str,
    *,
    units: Mapping[int, UnitRef],
    paths: Mapping[str, int],
    cluster_units: Mapping[str, int],
    groups: Mapping[str, TargetSpec],
    problems: list[Problem],
) -> frozenset[str]:
    """Cluster ids a target reaches; unknown units, clusters or groups are added to `problems`."""
    unit_ids = []
    for path in target.units:
        key = "/".join(part.strip() for part in path.split("/"))
        if key in paths:
            unit_ids.append(paths[key])
        else:
            problems.append(Problem(f"{where}.units", f"không có địa bàn {path!r}", f"no unit {path!r}"))
    clusters = set()
    for cluster_id in target.clusters:
        if cluster_id in cluster_units:
            clusters.add(cluster_id)
        else:
            problems.append(
                Problem(f"{where}.clusters", f"không có cụm loa {cluster_id!r}", f"no cluster {cluster_id!r}")
            )
    for name in target.groups:
        group = groups.get(name)
        if group is None:
            problems.append(Problem(f"{where}.groups", f"không có nhóm {name!r}", f"no group {name!r}"))
            continue
        clusters |= resolve(
            group,
            f"{where}.groups[{name}]",
            units=units,
            paths=paths,
            cluster_units=cluster_units,
            groups={},
            problems=problems,
        )
    reached = descendants(units, unit_ids)
    clusters.update(c for c, u in cluster_units.items() if u in reached)
    return frozenset(clusters)
