"""Coverage arithmetic: how many clusters of each group (commune, village, ...) played a broadcast."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from broadcast_server.domain.admin_tree import name_sort_key


@dataclass(frozen=True)
class CoverageRow:
    """One group's count of clusters, of those that played and of those that did not."""

    name: str
    clusters: int
    played: int
    not_played: int
    offline: int = 0  # of the clusters, how many were offline when the figures were taken

    @property
    def played_ratio(self) -> float:
        """Share of clusters that played, 0.0 for an empty group."""
        return self.played / self.clusters if self.clusters else 0.0


@dataclass(frozen=True)
class Coverage:
    """Per-group rows in Vietnamese name order, and the totals over distinct clusters."""

    rows: tuple[CoverageRow, ...]
    total: CoverageRow


def compute_coverage(
    memberships: Iterable[tuple[str, str]],
    played: Collection[str],
    total_name: str = "Tổng cộng",
    offline: Collection[str] = (),
) -> Coverage:
    """Coverage from (group name, cluster id) pairs and the ids of clusters that played.

    Played ids outside every group are ignored; a cluster listed in two groups counts once in the total.
    """
    played_ids = set(played)
    offline_ids = set(offline)
    groups: dict[str, set[str]] = {}
    for name, cluster_id in memberships:
        groups.setdefault(name, set()).add(cluster_id)
    rows = tuple(_row(name, groups[name], played_ids, offline_ids) for name in sorted(groups, key=name_sort_key))
    all_clusters = set().union(*groups.values()) if groups else set()
    return Coverage(rows=rows, total=_row(total_name, all_clusters, played_ids, offline_ids))


def _row(name: str, clusters: set[str], played_ids: set[str], offline_ids: set[str]) -> CoverageRow:
    played = len(clusters & played_ids)
    return CoverageRow(
        name=name,
        clusters=len(clusters),
        played=played,
        not_played=len(clusters) - played,
        offline=len(clusters & offline_ids),
    )
