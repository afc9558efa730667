"""Import a parsed fleet file: administrative units and clusters, all or nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from broadcast_server.db.session import session_scope
from broadcast_server.db.types import utcnow
from broadcast_server.domain.admin_tree import UnitPath, UnitStep, path_from_fleet_row
from broadcast_server.domain.fleet import FleetRow
from broadcast_server.models import AdminUnit, Cluster


@dataclass(frozen=True)
class ImportResult:
    """What an import changed; importing the same file again gives zeros except ``unchanged_clusters``."""

    created_units: int
    created_clusters: int
    updated_clusters: int
    unchanged_clusters: int
    reactivated_units: int = 0  # retired units that the file names again


def import_fleet(engine: Engine, rows: list[FleetRow]) -> ImportResult:
    """Get-or-create the units on every row's path and create or update its cluster, in one transaction.

    Clusters absent from ``rows`` are left as they are: a file may cover only part of the fleet.
    """
    with session_scope(engine) as session:
        units = _UnitIndex(session)
        created_clusters = updated_clusters = unchanged_clusters = 0
        existing = _clusters_by_id(session, (row.cluster_id for row in rows))
        for row in rows:
            unit_id = units.get_or_create(path_from_fleet_row(row))
            cluster = existing.get(row.cluster_id)
            if cluster is None:
                cluster = Cluster(id=row.cluster_id, unit_id=unit_id, lat=row.lat, lon=row.lon)
                session.add(cluster)
                existing[row.cluster_id] = cluster
                created_clusters += 1
            elif (cluster.unit_id, cluster.lat, cluster.lon) != (unit_id, row.lat, row.lon):
                cluster.unit_id, cluster.lat, cluster.lon = unit_id, row.lat, row.lon
                cluster.updated_at = utcnow()
                session.add(cluster)
                updated_clusters += 1
            else:
                unchanged_clusters += 1
        session.flush()
        return ImportResult(
            created_units=units.created,
            created_clusters=created_clusters,
            updated_clusters=updated_clusters,
            unchanged_clusters=unchanged_clusters,
            reactivated_units=units.reactivated,
        )


def _clusters_by_id(session: Session, ids: Iterable[str]) -> dict[str, Cluster]:
    wanted = sorted(set(ids))
    found: dict[str, Cluster] = {}
    for start in range(0, len(wanted), 500):  # stay under bind-parameter limits
        chunk = wanted[start : start + 500]
        found.update((cluster.id, cluster) for cluster in session.exec(select(Cluster).where(Cluster.id.in_(chunk))))
    return found


class _UnitIndex:
    """All units keyed by (parent id, level, name), so each path costs no query once loaded.

    Roots have parent None; the key makes them unique here even though the database's unique
    constraint treats NULL parents as distinct (a partial unique index backs this up).
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._units: dict[tuple[int | None, UnitStep], AdminUnit] = {
            (unit.parent_id, UnitStep(unit.level, unit.name)): unit for unit in session.exec(select(AdminUnit))
        }
        self._by_path: dict[UnitPath, int] = {}
        self.created = 0
        self.reactivated = 0

    def get_or_create(self, path: UnitPath) -> int:
        """The id of the unit at the end of ``path``, creating (or un-retiring) units along the way."""
        known = self._by_path.get(path)
        if known is not None:
            return known
        parent = path.parent
        parent_id = self.get_or_create(parent) if parent is not None else None
        unit = self._units.get((parent_id, path.leaf))
        if unit is None:
            unit = AdminUnit(parent_id=parent_id, name=path.leaf.name, level=path.leaf.level)
            self._session.add(unit)
            self._session.flush()  # assigns the id the children need
            self._units[(parent_id, path.leaf)] = unit
            self.created += 1
        elif unit.retired_at is not None:
            unit.retired_at = None
            self._session.add(unit)
            self.reactivated += 1
        assert unit.id is not None
        self._by_path[path] = unit.id
        return unit.id
