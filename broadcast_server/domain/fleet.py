"""The fleet file: one CSV row per loudspeaker cluster, with where it sits and its coordinates.

Parsing checks the whole file and reports every problem with the line number a text editor shows, so
an operator can fix the file in one pass; nothing is imported from a file with a problem.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from broadcast_server.domain.admin_tree import normalize_name, path_from_fleet_row
from mqtt_contract import CLUSTER_ID_PATTERN

if TYPE_CHECKING:
    from broadcast_server.domain.admin_tree import UnitPath

COLUMNS: tuple[str, ...] = ("cluster_id", "province", "district", "commune", "village", "lat", "lon")

_REQUIRED_NAMES = {
    "province": "tên tỉnh (province)",
    "district": "tên huyện (district)",
    "village": "tên thôn/ấp (village)",
}
_COORDINATE_RANGES = {"lat": 90.0, "lon": 180.0}
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class FleetRow:
    """One cluster of the fleet file; ``commune`` is "" where the district has no commune level."""

    cluster_id: str
    province: str
    district: str
    commune: str
    village: str
    lat: float
    lon: float

    @property
    def unit_path(self) -> UnitPath:
        return path_from_fleet_row(self)


class Problem(NamedTuple):
    """One problem of a fleet file: the line (header = 1) and what is wrong, in Vietnamese."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"dòng {self.line}: {self.message}"


class FleetFileError(ValueError):
    """A fleet file that cannot be imported; ``problems`` lists every problem found, by line."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems: list[Problem] = sorted(
            (Problem(line, message) for line, message in problems), key=lambda problem: problem.line
        )
        super().__init__("\n".join(str(problem) for problem in self.problems))


def decode_fleet_bytes(data: bytes) -> str:
    """The file's text: UTF-8, with or without a BOM; anything else is a problem on its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FleetFileError([(line, "tệp không phải mã UTF-8 (hãy lưu lại tệp dạng CSV UTF-8)")]) from None


@dataclass(frozen=True)
class Renamed:
    """A duplicate cluster id given a new one (only when the caller asked for it)."""

    line: int
    old_id: str
    new_id: str
    first_line: int

    def __str__(self) -> str:
        return (
            f"dòng {self.line}: cluster_id {self.old_id!r} trùng với dòng {self.first_line}, đổi thành {self.new_id!r}"
        )


@dataclass(frozen=True)
class FleetFile:
    rows: list[FleetRow]
    renamed: list[Renamed]


def parse_fleet_csv(text: str) -> list[FleetRow]:
    """Rows of a fleet CSV in file order; raises FleetFileError listing every problem found."""
    return parse_fleet(text).rows


def parse_fleet(text: str, *, rename_duplicates: bool = False) -> FleetFile:
    """Parse a fleet CSV; with `rename_duplicates`, a repeated cluster_id becomes `<id>-2`, `<id>-3`...

    Real files have such repeats (ids made from commune names without diacritics: Bình Thanh and
    Bình Thạnh give the same id). Strict import refuses them; the demo and simulator rename them.
    """
    text = text.removeprefix("\ufeff")
    problems: list[tuple[int, str]] = []
    records = _records(text, problems)

    header = next(records, None)
    if header is None or not any(cell.strip() for cell in header[1]):
        raise FleetFileError(problems + [(1, f"thiếu dòng tiêu đề: {','.join(COLUMNS)}")])
    columns = _check_header(header[1], problems)
    if columns is None:
        raise FleetFileError(problems)

    body = [(line, record) for line, record in records if any(cell.strip() for cell in record)]
    taken = {record[columns["cluster_id"]].strip() for _, record in body if len(record) == len(header[1])}
    rows: list[FleetRow] = []
    renamed: list[Renamed] = []
    first_line_of: dict[str, int] = {}
    for line, record in body:
        if len(record) != len(header[1]):
            problems.append((line, f"có {len(record)} cột, dòng tiêu đề có {len(header[1])} cột"))
            continue
        cells = {name: record[index].strip() for name, index in columns.items()}
        cluster_id = cells["cluster_id"]
        duplicate_of = first_line_of.get(cluster_id) if cluster_id else None
        if duplicate_of is not None and rename_duplicates:
            suffix = 2
            while f"{cluster_id}-{suffix}" in taken:
                suffix += 1
            new_id = f"{cluster_id}-{suffix}"
            taken.add(new_id)
            renamed.append(Renamed(line, cluster_id, new_id, duplicate_of))
            cells["cluster_id"] = new_id
            duplicate_of = None
        elif duplicate_of is not None:
            problems.append((line, f"cluster_id {cluster_id!r} trùng với dòng {duplicate_of}"))
        elif cluster_id:
            first_line_of[cluster_id] = line
        row = _parse_row(line, cells, problems)
        if row is not None and duplicate_of is None:
            rows.append(row)

    if problems:
        raise FleetFileError(problems)
    return FleetFile(rows, renamed)


def _records(text: str, problems: list[tuple[int, str]]):
    """(first line, fields) of each CSV record; a quoted field may span several lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                problems.append((start, 'trường mở dấu ngoặc kép (") nhưng không đóng đến hết tệp'))
            else:
                problems.append((reader.line_num, f"lỗi định dạng CSV: {exc}"))
            return
        yield start, record


def _check_header(header: list[str], problems: list[tuple[int, str]]) -> dict[str, int] | None:
    """Column name → index, or None when a required column is missing."""
    columns: dict[str, int] = {}
    extra: list[str] = []
    for index, raw in enumerate(header):
        name = raw.strip().lower()
        if name in columns:
            problems.append((1, f"cột {name!r} lặp lại trong dòng tiêu đề"))
        elif name in COLUMNS:
            columns[name] = index
        else:
            extra.append(raw.strip())
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        problems.append((1, f"thiếu cột: {', '.join(missing)} (cần: {','.join(COLUMNS)})"))
    if extra:
        problems.append((1, f"cột thừa: {', '.join(repr(name) for name in extra)} (cần: {','.join(COLUMNS)})"))
    return None if missing else columns


def _parse_row(line: int, cells: dict[str, str], problems: list[tuple[int, str]]) -> FleetRow | None:
    found = len(problems)
    cluster_id = cells["cluster_id"]
    if not cluster_id:
        problems.append((line, "thiếu cluster_id"))
    elif not CLUSTER_ID_PATTERN.match(cluster_id):
        problems.append(
            (
                line,
                f"cluster_id không hợp lệ: {cluster_id!r} (chỉ gồm chữ không dấu, số, '.', '_', '-',"
                " bắt đầu bằng chữ hoặc số, tối đa 64 ký tự)",
            )
        )
    for column, label in _REQUIRED_NAMES.items():
        if not cells[column]:
            problems.append((line, f"thiếu {label}"))
    coordinates = {column: _coordinate(line, column, cells[column], problems) for column in _COORDINATE_RANGES}
    if len(problems) > found:
        return None
    return FleetRow(
        cluster_id=cluster_id,
        province=normalize_name(cells["province"]),
        district=normalize_name(cells["district"]),
        commune=normalize_name(cells["commune"]),
        village=normalize_name(cells["village"]),
        lat=coordinates["lat"],
        lon=coordinates["lon"],
    )


def _coordinate(line: int, column: str, raw: str, problems: list[tuple[int, str]]) -> float:
    if not raw:
        problems.append((line, f"thiếu tọa độ {column}"))
        return math.nan
    if not _DECIMAL.fullmatch(raw):
        problems.append((line, f"tọa độ {column} không hợp lệ: {raw!r}"))
        return math.nan
    value = float(raw)
    limit = _COORDINATE_RANGES[column]
    if not -limit <= value <= limit:
        problems.append((line, f"tọa độ {column} ngoài khoảng [{-limit:g}, {limit:g}]: {raw}"))
    return value
