"""Fleet CSV parsing: every problem is reported, on the line a text editor shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcast_server.domain.fleet import (
    COLUMNS,
    FleetFileError,
    FleetRow,
    decode_fleet_bytes,
    parse_fleet_csv,
)

HEADER = ",".join(COLUMNS)
HON_QUAN = Path(__file__).resolve().parents[2] / "bcast" / "data" / "hon-quan.csv"


def _csv(*lines: str) -> str:
    return "\n".join((HEADER, *lines)) + "\n"


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet_csv(text)
    return [(problem.line, problem.message) for problem in caught.value.problems]


def test_parses_rows_in_file_order_and_normalises_names() -> None:
    decomposed = "Bi\u0300nh Phu\u031bo\u031b\u0301c"  # NFD, as some editors save it
    rows = parse_fleet_csv(
        _csv(
            f"a-001, {decomposed} ,Hớn  Quản,Xã An Phú,Thôn 1,11.5,106.6",
            "a-002,Bình Phước,Hớn Quản,,Ấp 2,-11.5,-106.6",
        )
    )
    assert rows == [
        FleetRow("a-001", "Bình Phước", "Hớn Quản", "Xã An Phú", "Thôn 1", 11.5, 106.6),
        FleetRow("a-002", "Bình Phước", "Hớn Quản", "", "Ấp 2", -11.5, -106.6),
    ]


def test_real_fleet_file_parses() -> None:
    rows = parse_fleet_csv(HON_QUAN.read_text(encoding="utf-8"))
    assert len(rows) == 202
    assert len({row.cluster_id for row in rows}) == 202


def test_bad_coordinate_names_its_line() -> None:
    text = _csv(*(f"c-{n:03},T,H,X,Thôn {n},11.5,106.6" for n in range(1, 6)), "c-006,T,H,X,Thôn 6,abc,106.6")
    assert _problems(text) == [(7, "tọa độ lat không hợp lệ: 'abc'")]
    with pytest.raises(FleetFileError) as caught:
        parse_fleet_csv(text)
    assert str(caught.value) == "dòng 7: tọa độ lat không hợp lệ: 'abc'"


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        ("90.5", "106", "tọa độ lat ngoài khoảng [-90, 90]: 90.5"),
        ("10", "-180.01", "tọa độ lon ngoài khoảng [-180, 180]: -180.01"),
        ("nan", "106", "tọa độ lat không hợp lệ: 'nan'"),
        ("10", "inf", "tọa độ lon không hợp lệ: 'inf'"),
        ("10", "1_06", "tọa độ lon không hợp lệ: '1_06'"),
        ("", "106", "thiếu tọa độ lat"),
    ],
)
def test_coordinates_must_be_numbers_in_range(lat: str, lon: str, expected: str) -> None:
    assert _problems(_csv(f"c-1,T,H,X,V,{lat},{lon}")) == [(2, expected)]


def test_coordinate_range_edges_are_accepted() -> None:
    rows = parse_fleet_csv(_csv("c-1,T,H,X,V,-90,180", "c-2,T,H,X,V,90,-180", "c-3,T,H,X,V,1e1,+1.5"))
    assert [(row.lat, row.lon) for row in rows] == [(-90, 180), (90, -180), (10, 1.5)]


def test_duplicate_cluster_id_names_both_lines() -> None:
    text = _csv("c-1,T,H,X,V1,1,1", "c-2,T,H,X,V2,1,1", "c-1,T,H,X,V3,1,1")
    assert _problems(text) == [(4, "cluster_id 'c-1' trùng với dòng 2")]


def test_duplicate_is_reported_even_when_the_row_has_other_problems() -> None:
    problems = _problems(_csv("c-1,T,H,X,V1,1,1", "c-1,T,H,X,V2,x,1"))
    assert (3, "cluster_id 'c-1' trùng với dòng 2") in problems
    assert (3, "tọa độ lat không hợp lệ: 'x'") in problems


def test_missing_and_invalid_cluster_ids() -> None:
    problems = _problems(_csv("c-1,T,H,X,V,1,1", ",T,H,X,V,1,1", "xã-1,T,H,X,V,1,1", f"{'a' * 65},T,H,X,V,1,1"))
    assert problems[0] == (3, "thiếu cluster_id")
    assert [line for line, _ in problems] == [3, 4, 5]
    assert problems[1][1].startswith("cluster_id không hợp lệ: 'xã-1'")
    assert problems[2][1].startswith("cluster_id không hợp lệ:")


def test_empty_names_are_reported_but_commune_may_be_empty() -> None:
    assert _problems(_csv("c-1,,,X,,1,1")) == [
        (2, "thiếu tên tỉnh (province)"),
        (2, "thiếu tên huyện (district)"),
        (2, "thiếu tên thôn/ấp (village)"),
    ]
    assert parse_fleet_csv(_csv("c-1,T,H,,V,1,1"))[0].commune == ""


def test_every_problem_of_the_file_is_reported_in_line_order() -> None:
    text = _csv("c-1,T,H,X,V,1,1", "c-2,T,H,X,V,x,1", "c-3,T,,X,V,1,1", "c-1,T,H,X,V,1,1", "c-5,T,H,X,V,1")
    assert [line for line, _ in _problems(text)] == [3, 4, 5, 6]


def test_bom_is_ignored_and_line_numbers_still_count_the_header() -> None:
    text = "\ufeff" + _csv("c-1,T,H,X,V,1,1", "c-2,T,H,X,V,1,999")
    assert _problems(text) == [(3, "tọa độ lon ngoài khoảng [-180, 180]: 999")]
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = parse_fleet_csv(decode_fleet_bytes(data.replace(b"999", b"9")))
    assert [row.cluster_id for row in rows] == ["c-1", "c-2"]


def test_header_with_missing_and_extra_columns() -> None:
    problems = _problems("cluster_id,province,district,village,lat,lon,ghi_chu\nc-1,T,H,V,1,1,x\n")
    assert problems == [
        (1, f"thiếu cột: commune (cần: {HEADER})"),
        (1, f"cột thừa: 'ghi_chu' (cần: {HEADER})"),
    ]


def test_extra_column_alone_is_a_problem_too() -> None:
    problems = _problems(HEADER + ",ghi_chu\nc-1,T,H,X,V,1,1,x\n")
    assert problems == [(1, f"cột thừa: 'ghi_chu' (cần: {HEADER})")]


def test_header_columns_may_come_in_any_order() -> None:
    rows = parse_fleet_csv("lat,lon,village,commune,district,province,cluster_id\n1,2,V,X,H,T,c-1\n")
    assert rows == [FleetRow("c-1", "T", "H", "X", "V", 1.0, 2.0)]


def test_empty_file() -> None:
    assert _problems("") == [(1, f"thiếu dòng tiêu đề: {HEADER}")]


def test_row_with_wrong_number_of_fields() -> None:
    assert _problems(_csv("c-1,T,H,X,V,1")) == [(2, "có 6 cột, dòng tiêu đề có 7 cột")]


def test_blank_lines_count_for_line_numbers_but_are_skipped() -> None:
    text = HEADER + "\r\n\r\nc-1,T,H,X,V,1,1\r\n,,,,,,\r\nc-2,T,H,X,V,1,x\r\n"
    assert _problems(text) == [(5, "tọa độ lon không hợp lệ: 'x'")]


def test_quoted_field_spanning_lines_reports_its_first_line() -> None:
    text = _csv('c-1,T,H,"Xã\nAn Phú",V,1,1', "c-2,T,H,X,V,x,1")
    assert _problems(text) == [(4, "tọa độ lat không hợp lệ: 'x'")]
    assert parse_fleet_csv(_csv('c-1,T,H,"Xã\nAn Phú",V,1,1'))[0].commune == "Xã An Phú"


def test_unclosed_quote_is_reported() -> None:
    problems = _problems(_csv("c-1,T,H,X,V,1,1", 'c-2,T,"H,X,V,1,1'))
    assert problems[0][0] == 3


def test_file_that_is_not_utf8_names_the_line() -> None:
    data = (HEADER + "\nc-1,T,H,X,V,1,1\nc-2,T,H,X\xe3,V,1,1\n").encode("utf-8").replace(b"X\xc3\xa3", b"X\xe3")
    with pytest.raises(FleetFileError) as caught:
        decode_fleet_bytes(data)
    assert caught.value.problems[0].line == 3


def test_repeated_ids_are_renamed_only_on_request():
    from broadcast_server.domain.fleet import parse_fleet

    text = (
        "cluster_id,province,district,commune,village,lat,lon\n"
        "bs-binh-thanh-001,Quảng Ngãi,Bình Sơn,Xã Bình Thanh,Thôn 1,15.2,108.7\n"
        "bs-binh-thanh-001-2,Quảng Ngãi,Bình Sơn,Xã Bình Thanh,Thôn 2,15.2,108.7\n"
        "bs-binh-thanh-001,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.2,108.7\n"
    )
    with pytest.raises(FleetFileError) as error:
        parse_fleet(text)
    assert [p.line for p in error.value.problems] == [4]
    fleet = parse_fleet(text, rename_duplicates=True)
    assert [r.cluster_id for r in fleet.rows] == ["bs-binh-thanh-001", "bs-binh-thanh-001-2", "bs-binh-thanh-001-3"]
    assert [(r.line, r.new_id, r.first_line) for r in fleet.renamed] == [(4, "bs-binh-thanh-001-3", 2)]
    assert fleet.rows[2].commune == "Xã Bình Thạnh"
