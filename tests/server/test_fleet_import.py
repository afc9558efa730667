"""Fleet import service on SQLite and PostgreSQL: units along each path, clusters, idempotence, atomicity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from broadcast_server.domain.admin_tree import COMMUNE, DISTRICT, PROVINCE, VILLAGE
from broadcast_server.domain.fleet import FleetRow, parse_fleet_csv
from broadcast_server.models import AdminUnit, Cluster
from broadcast_server.services.fleet_import import ImportResult, import_fleet


def _rows(path) -> list[FleetRow]:
    return parse_fleet_csv(path.read_text(encoding="utf-8"))


def _unit(session: Session, name: str, level: str, parent_id: int | None) -> AdminUnit:
    return session.exec(
        select(AdminUnit).where(AdminUnit.name == name, AdminUnit.level == level, AdminUnit.parent_id == parent_id)
    ).one()


def test_hon_quan_gives_202_clusters_and_13_communes(engine, hon_quan_csv) -> None:
    result = import_fleet(engine, _rows(hon_quan_csv))
    assert result == ImportResult(created_units=217, created_clusters=202, updated_clusters=0, unchanged_clusters=0)

    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Cluster)).one() == 202
        provinces = session.exec(select(AdminUnit).where(AdminUnit.parent_id.is_(None))).all()
        assert [(unit.name, unit.level) for unit in provinces] == [("Bình Phước", PROVINCE)]
        district = _unit(session, "Hớn Quản", DISTRICT, provinces[0].id)
        communes = session.exec(select(AdminUnit).where(AdminUnit.parent_id == district.id)).all()
        assert len(communes) == 13
        assert {unit.level for unit in communes} == {COMMUNE}
        assert "Xã Đồng Nơ" in {unit.name for unit in communes}

        cluster = session.get(Cluster, "hon-quan-tan-khai-001")
        assert cluster is not None and (cluster.lat, cluster.lon) == (11.54856, 106.63315)
        village = session.get(AdminUnit, cluster.unit_id)
        assert village is not None and (village.name, village.level) == ("Trung tâm xã", VILLAGE)
        commune = session.get(AdminUnit, village.parent_id)
        assert commune is not None and commune.name == "Thị trấn Tân Khai"
        assert cluster.created_at.tzinfo is not None and cluster.created_at.utcoffset().total_seconds() == 0


def test_importing_twice_changes_nothing(engine, database_url, hon_quan_csv, snapshot) -> None:
    rows = _rows(hon_quan_csv)
    import_fleet(engine, rows)
    before = snapshot(database_url)
    again = import_fleet(engine, rows)
    assert again == ImportResult(created_units=0, created_clusters=0, updated_clusters=0, unchanged_clusters=202)
    assert snapshot(database_url) == before


def test_changed_rows_update_clusters(engine, hon_quan_csv) -> None:
    rows = _rows(hon_quan_csv)
    import_fleet(engine, rows)
    moved = replace(rows[0], village="Thôn Mới")
    shifted = replace(rows[1], lat=rows[1].lat + 0.001)
    new = FleetRow("hon-quan-moi-001", "Bình Phước", "Hớn Quản", "Xã An Phú", "Thôn 1", 11.6, 106.6)
    result = import_fleet(engine, [moved, shifted, *rows[2:], new])
    assert result == ImportResult(created_units=1, created_clusters=1, updated_clusters=2, unchanged_clusters=200)

    with Session(engine) as session:
        cluster = session.get(Cluster, moved.cluster_id)
        assert cluster is not None
        village = session.get(AdminUnit, cluster.unit_id)
        assert village is not None and village.name == "Thôn Mới"
        assert cluster.updated_at >= cluster.created_at
        assert session.get(Cluster, shifted.cluster_id).lat == shifted.lat
        # The unit the cluster left is kept: history refers to it.
        assert session.exec(select(func.count()).select_from(AdminUnit)).one() == 218


def test_empty_commune_attaches_villages_to_the_district(engine) -> None:
    rows = [
        FleetRow("ly-son-001", "Quảng Ngãi", "Lý Sơn", "", "Thôn Đông", 15.38, 109.12),
        FleetRow("ly-son-002", "Quảng Ngãi", "Lý Sơn", "", "Thôn Tây", 15.37, 109.10),
        FleetRow("binh-son-001", "Quảng Ngãi", "Bình Sơn", "Xã Bình Châu", "Thôn 1", 15.2, 108.8),
    ]
    result = import_fleet(engine, rows)
    assert result.created_units == 1 + 2 + 2 + 1 + 1  # province, 2 districts, 2 villages, commune, village

    with Session(engine) as session:
        province = _unit(session, "Quảng Ngãi", PROVINCE, None)
        ly_son = _unit(session, "Lý Sơn", DISTRICT, province.id)
        villages = session.exec(select(AdminUnit).where(AdminUnit.parent_id == ly_son.id)).all()
        assert sorted((unit.name, unit.level) for unit in villages) == [("Thôn Tây", VILLAGE), ("Thôn Đông", VILLAGE)]
        cluster = session.get(Cluster, "ly-son-001")
        assert cluster is not None and session.get(AdminUnit, cluster.unit_id).parent_id == ly_son.id


def test_import_is_all_or_nothing(engine, database_url, hon_quan_csv, snapshot) -> None:
    rows = _rows(hon_quan_csv)
    import_fleet(engine, rows[:100])
    before = snapshot(database_url)
    new = FleetRow("x-001", "Tỉnh Mới", "Huyện Mới", "Xã Mới", "Thôn Mới", 10.0, 106.0)
    broken = replace(rows[150], lat=None)  # type: ignore[arg-type]  # fails at the database, late
    with pytest.raises(IntegrityError):
        import_fleet(engine, [new, replace(rows[0], lon=100.0), *rows[100:150], broken])
    assert snapshot(database_url) == before


def test_retired_unit_named_again_is_reactivated(engine, hon_quan_csv) -> None:
    rows = _rows(hon_quan_csv)
    import_fleet(engine, rows)
    with Session(engine) as session:
        unit = session.exec(select(AdminUnit).where(AdminUnit.name == "Xã Đồng Nơ")).one()
        unit.retired_at = datetime.now(UTC)
        session.add(unit)
        session.commit()
    result = import_fleet(engine, rows)
    assert (result.created_units, result.reactivated_units, result.unchanged_clusters) == (0, 1, 202)
    with Session(engine) as session:
        assert session.exec(select(AdminUnit).where(AdminUnit.name == "Xã Đồng Nơ")).one().retired_at is None


def test_database_refuses_a_second_root_with_the_same_name(engine, hon_quan_csv) -> None:
    import_fleet(engine, _rows(hon_quan_csv)[:1])
    with Session(engine) as session:
        session.add(AdminUnit(parent_id=None, name="Bình Phước", level=PROVINCE))
        with pytest.raises(IntegrityError):
            session.commit()
