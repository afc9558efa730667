"""`bcast report quarterly`: XLSX with a native chart, printable HTML with SVG charts, CSV = statistics code."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from bcast.cli import app
from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import AudioAsset, Broadcast, Bulletin, Delivery
from broadcast_server.reports.pdf import soffice
from broadcast_server.services.fleet_import import import_fleet
from broadcast_server.services.ingest import IngestStats, store_batch
from broadcast_server.statistics.periods import Quarter, QuarterError
from broadcast_server.statistics.queries import commune_figures, online_share_by_day
from mqtt_contract import Channel, validate
from mqtt_contract.times import isoformat

FLEET = """cluster_id,province,district,commune,village,lat,lon
a-1,Bình Phước,Hớn Quản,Thị trấn Tân Khai,Thôn 1,11.5,106.6
a-2,Bình Phước,Hớn Quản,Thị trấn Tân Khai,Thôn 2,11.5,106.6
b-1,Bình Phước,Hớn Quản,Xã Đồng Nơ,Ấp 1,11.6,106.7
b-2,Bình Phước,Hớn Quản,Xã Đồng Nơ,Ấp 2,11.6,106.7
c-1,Bình Phước,Hớn Quản,Xã An Phú,Ấp 1,11.6,106.7
"""
ASSET = "ef" * 32
Q4_START = datetime(2026, 9, 30, 17, tzinfo=UTC)  # 1 Oct 2026 00:00 local


def message(cluster_id: str, channel: Channel, body: dict, at: datetime) -> Incoming:
    return Incoming(cluster_id, channel, validate(channel, {"v": 1, **body}), at.timestamp())


@pytest.fixture
def quarter_db(engine):
    """Three weeks of broadcasts in Q4 2026 (two categories and an emergency), with presence changes."""
    import_fleet(engine, parse_fleet_csv(FLEET))
    with session_scope(engine) as session:
        session.add(AudioAsset(id=ASSET, size_bytes=1, duration_s=60, storage_key="x.mp3"))
        bulletins = {
            name: Bulletin(
                title=name,
                text="x",
                kind="text",
                category=category,
                priority=priority,
                status="approved",
                audio_asset_id=ASSET,
            )
            for name, category, priority in (
                ("dx", "Chuyển đổi số", "normal"),
                ("news", None, "normal"),
                ("alarm", "Thiên tai", "emergency"),
            )
        }
        session.add_all(bulletins.values())
    items: list[Incoming] = []
    for c in ("a-1", "a-2", "b-1", "b-2", "c-1"):
        items.append(message(c, Channel.STATUS, {"state": "online", "seq": 1, "ts": isoformat(Q4_START)}, Q4_START))
    items.append(message("b-2", Channel.STATUS, {"state": "offline", "seq": 1}, Q4_START + timedelta(days=2, hours=1)))
    for day in range(21):
        at = Q4_START + timedelta(days=day, hours=1)
        name = ("dx", "news", "alarm")[day % 3]
        with session_scope(engine) as session:
            broadcast = Broadcast(
                bulletin_id=bulletins[name].id,
                audio_asset_id=ASSET,
                priority=bulletins[name].priority,
                target={},
                created_at=at,
                expires_at=at + timedelta(minutes=10),
                status="dispatched",
            )
            session.add(broadcast)
            session.flush()
            deliveries = {c: uuid.uuid4().hex for c in ("a-1", "a-2", "b-1", "b-2", "c-1")}
            session.add_all(
                Delivery(broadcast_id=broadcast.id, cluster_id=c, command_id=k, state="sent")
                for c, k in deliveries.items()
            )
        for c, command in deliveries.items():
            if c == "b-2" and day >= 3 or c == "c-1" and name == "news":
                continue  # b-2 offline from day 3; c-1 never plays the news
            body = {
                "id": uuid.uuid4().hex,
                "ts": isoformat(at),
                "command_id": command,
                "broadcast_id": broadcast.id,
                "status": "played",
                "played_s": 60.0 + day + (0.5 if c == "a-2" else 0),
                "late_s": 1.0,
            }
            items.append(message(c, Channel.REPORT, body, at + timedelta(minutes=1)))
    with session_scope(engine) as session:
        store_batch(session, items, IngestStats())
    return engine


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_quarter_argument_is_validated_in_vietnamese(tmp_path):
    with pytest.raises(QuarterError):
        Quarter.parse("2026Q5")
    assert (Quarter.parse("2026q4").start, Quarter.parse("2026-Q4").end) == (date(2026, 10, 1), date(2027, 1, 1))
    result = CliRunner().invoke(
        app,
        [
            "report",
            "quarterly",
            "--quarter",
            "Q4-2026",
            "-o",
            str(tmp_path / "out"),
            "--database-url",
            f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ],
    )
    assert result.exit_code == 2
    assert "Quý không hợp lệ" in result.output and "2026Q4" in result.output
    assert not (tmp_path / "out").exists()


def test_quarterly_report_writes_xlsx_html_and_csv_with_the_statistics_figures(quarter_db, database_url, tmp_path):
    out = tmp_path / "bao-cao"
    result = CliRunner().invoke(
        app, ["report", "quarterly", "--quarter", "2026Q4", "-o", str(out), "--database-url", database_url]
    )
    assert result.exit_code == 0, result.output
    assert "Quý IV năm 2026" in result.output
    with session_scope(quarter_db) as session:
        figures = commune_figures(session, date(2026, 10, 1), date(2027, 1, 1))
        online = online_share_by_day(session, date(2026, 10, 1), date(2027, 1, 1))

    # CSV: every figure equals the statistics code's, exactly.
    [main] = list(out.glob("*2026Q4.csv"))
    rows = list(csv.DictReader(main.open(encoding="utf-8")))
    assert [r["commune"] for r in rows] == [f.name for f in figures] == ["Thị trấn Tân Khai", "Xã An Phú", "Xã Đồng Nơ"]
    for row, f in zip(rows, figures, strict=True):
        assert int(row["bulletins_played"]) == f.bulletins_played
        assert float(row["broadcast_seconds"]) == f.broadcast_seconds
        assert int(row["clusters_played"]) == f.clusters_played
        assert int(row["emergency_played"]) == f.emergency_played
        assert int(row["category:Chuyển đổi số"]) == f.categories.get("Chuyển đổi số", 0)
    tan_khai = {r["commune"]: r for r in rows}["Thị trấn Tân Khai"]
    # 21 daily broadcasts, a-2 always the longest: sum(60.5 + d) for d in 0..20 = 1480.5 s.
    assert (tan_khai["bulletins_played"], tan_khai["broadcast_seconds"], tan_khai["clusters_played"]) == (
        "21",
        "1480.5",
        "42",
    )
    assert (tan_khai["category:Chuyển đổi số"], tan_khai["category:Thiên tai"], tan_khai["emergency_played"]) == (
        "7",
        "7",
        "7",
    )
    an_phu = {r["commune"]: r for r in rows}["Xã An Phú"]
    assert an_phu["bulletins_played"] == "14" and an_phu["clusters_targeted"] == "21"
    [online_csv] = list(out.glob("*truc-tuyen.csv"))
    series = list(csv.DictReader(online_csv.open(encoding="utf-8")))
    assert series[0] == {"day": "2026-10-01", "online_share": "1.0"}
    # b-2 dropped at 01:00 local on 3 October: 23 of its 24 hours lost that day, all of them from the 4th.
    assert float(series[2]["online_share"]) == pytest.approx(1 - 0.2 * 23 / 24)
    assert series[3] == {"day": "2026-10-04", "online_share": "0.8"}
    assert [round(s, 6) for _, s in online[:21]] == [float(r["online_share"]) for r in series[:21]]

    # XLSX: opens with openpyxl, has the figures and a native bar chart (and a line chart).
    openpyxl = pytest.importorskip("openpyxl")
    [xlsx] = list(out.glob("*.xlsx"))
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Báo cáo"]
    names = [sheet.cell(row=r, column=1).value for r in range(6, 6 + len(figures))]
    assert names == [f.name for f in figures]
    assert [sheet.cell(row=r, column=3).value for r in range(6, 6 + len(figures))] == [
        f.bulletins_played for f in figures
    ]
    assert sheet.cell(row=6 + len(figures), column=1).value == "Tổng cộng"
    assert len(sheet._charts) == 1 and type(sheet._charts[0]).__name__ == "BarChart"
    assert len(book["Trực tuyến"]._charts) == 1

    # HTML: parses, is self-contained, in Vietnamese, with both charts as inline SVG.
    [html] = list(out.glob("*.html"))
    page = html.read_text(encoding="utf-8")
    parser = Collector()
    parser.feed(page)
    parser.close()
    tags = [t for t, _ in parser.tags]
    svg_ids = [a.get("id") for t, a in parser.tags if t == "svg"]
    assert svg_ids == ["chart-hours", "chart-online"]
    assert "script" not in tags and not any(a.get("src") or a.get("href") for _, a in parser.tags)
    text = " ".join(parser.text)
    assert "BÁO CÁO" in text and "Quý IV năm 2026" in text and "huyện Hớn Quản, tỉnh Bình Phước" in text
    assert "21 lượt chuyên mục “Chuyển đổi số”" in " ".join(text.split())  # 7 in each of 3 communes
    assert sum(1 for t, a in parser.tags if t == "rect") == len(figures)  # one bar per commune
    assert "polyline" in tags


@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) is not installed")
def test_the_xlsx_converts_to_pdf_with_libreoffice(quarter_db, database_url, tmp_path):
    out = tmp_path / "pdf"
    result = CliRunner().invoke(
        app, ["report", "quarterly", "--quarter", "2026Q4", "-o", str(out), "--database-url", database_url, "--pdf"]
    )
    assert result.exit_code == 0, result.output
    [pdf] = list(out.glob("*.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
