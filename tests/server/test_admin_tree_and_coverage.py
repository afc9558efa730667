"""Pure domain: unit paths of any depth, the in-memory tree, Vietnamese ordering and coverage counts."""

from __future__ import annotations

import pytest

from broadcast_server.domain.admin_tree import (
    COMMUNE,
    DISTRICT,
    PROVINCE,
    VILLAGE,
    AdminTree,
    InvalidUnitPath,
    UnitPath,
    name_sort_key,
    path_from_fleet_row,
)
from broadcast_server.domain.coverage import CoverageRow, compute_coverage
from broadcast_server.domain.fleet import FleetRow


def test_path_from_row_with_commune() -> None:
    path = path_from_fleet_row(FleetRow("c-1", "Bình Phước", "Hớn Quản", "Xã An Phú", "Thôn 1", 1, 1))
    assert path.names == ("Bình Phước", "Hớn Quản", "Xã An Phú", "Thôn 1")
    assert path.levels == (PROVINCE, DISTRICT, COMMUNE, VILLAGE)
    assert str(path) == "Bình Phước / Hớn Quản / Xã An Phú / Thôn 1"


def test_empty_commune_attaches_the_village_to_the_district() -> None:
    path = path_from_fleet_row(FleetRow("c-1", "Quảng Ngãi", "Lý Sơn", "", "Thôn Đông", 1, 1))
    assert path.names == ("Quảng Ngãi", "Lý Sơn", "Thôn Đông")
    assert path.levels == (PROVINCE, DISTRICT, VILLAGE)
    assert path.at_level(COMMUNE) is None
    assert path.parent is not None and path.parent.leaf == (DISTRICT, "Lý Sơn")


def test_prefixes_run_from_the_root() -> None:
    path = UnitPath.of((PROVINCE, "T"), (DISTRICT, "H"), (COMMUNE, "X"))
    assert [p.names for p in path.prefixes()] == [("T",), ("T", "H"), ("T", "H", "X")]


def test_paths_of_any_depth_and_invalid_paths() -> None:
    deep = UnitPath.of(*((f"level{i}", f"unit {i}") for i in range(7)))
    assert deep.depth == 7
    with pytest.raises(InvalidUnitPath):
        UnitPath(())
    with pytest.raises(InvalidUnitPath):
        UnitPath.of((PROVINCE, "  "))


def test_tree_collects_clusters_under_each_unit() -> None:
    rows = [
        FleetRow("a", "T", "H", "X1", "V1", 1, 1),
        FleetRow("b", "T", "H", "X1", "V2", 1, 1),
        FleetRow("c", "T", "H", "X2", "V1", 1, 1),
        FleetRow("d", "T", "H", "", "V9", 1, 1),
    ]
    tree = AdminTree((row.unit_path, row.cluster_id) for row in rows)
    district = tree.find(UnitPath.of((PROVINCE, "T"), (DISTRICT, "H")))
    assert district is not None
    assert district.all_cluster_ids() == {"a", "b", "c", "d"}
    assert [child.step.name for child in district.sorted_children()] == ["V9", "X1", "X2"]
    commune = tree.find(UnitPath.of((PROVINCE, "T"), (DISTRICT, "H"), (COMMUNE, "X1")))
    assert commune is not None and commune.all_cluster_ids() == {"a", "b"}
    assert tree.find(UnitPath.of((PROVINCE, "T"), (DISTRICT, "Khác"))) is None
    assert [str(path) for path, _ in tree.walk()][:3] == ["T", "T / H", "T / H / V9"]


def test_vietnamese_sort_order() -> None:
    names = ["Xã Đồng Nơ", "Xã Tân Lợi", "Xã Dương Hòa", "Xã An Phú", "Thôn 10", "Thôn 2", "Ấp Ba", "Ăn", "An"]
    assert sorted(names, key=name_sort_key) == [
        "An",
        "Ăn",
        "Ấp Ba",
        "Thôn 2",
        "Thôn 10",
        "Xã An Phú",
        "Xã Dương Hòa",
        "Xã Đồng Nơ",
        "Xã Tân Lợi",
    ]
    # Letters decide before tones; tones only break ties (ngang, huyền, hỏi, ngã, sắc, nặng).
    assert sorted(["bạ", "bá", "bã", "bả", "bà", "ba"], key=name_sort_key) == ["ba", "bà", "bả", "bã", "bá", "bạ"]
    assert name_sort_key("Xã Đồng Nơ") == name_sort_key("Xa\u0303 Đô\u0300ng Nơ")[:2] + ("Xã Đồng Nơ",)


def test_coverage_counts_per_group_and_totals() -> None:
    memberships = [
        ("Xã Tân Lợi", "t1"),
        ("Xã Đồng Nơ", "d1"),
        ("Xã Đồng Nơ", "d2"),
        ("Xã An Phú", "a1"),
        ("Xã An Phú", "a1"),  # listed twice: counted once
    ]
    coverage = compute_coverage(memberships, played={"d1", "a1", "elsewhere"})
    assert coverage.rows == (
        CoverageRow("Xã An Phú", clusters=1, played=1, not_played=0),
        CoverageRow("Xã Đồng Nơ", clusters=2, played=1, not_played=1),
        CoverageRow("Xã Tân Lợi", clusters=1, played=0, not_played=1),
    )
    assert coverage.total == CoverageRow("Tổng cộng", clusters=4, played=2, not_played=2)
    assert coverage.rows[1].played_ratio == 0.5


def test_coverage_of_nothing() -> None:
    coverage = compute_coverage([], played={"x"})
    assert coverage.rows == ()
    assert coverage.total == CoverageRow("Tổng cộng", 0, 0, 0)
    assert coverage.total.played_ratio == 0.0
