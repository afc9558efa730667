"""Statistics per broadcast and per commune: rollups equal the raw figures and the hand-counted truth."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import AdminUnit, AudioAsset, Broadcast, Bulletin, Delivery, StatsDirtyBroadcast
from broadcast_server.services.fleet_import import import_fleet
from broadcast_server.services.ingest import IngestStats, store_batch
from broadcast_server.statistics.figures import DEMO_KEYS, total_figures
from broadcast_server.statistics.queries import broadcast_figures, commune_figures, commune_figures_raw
from mqtt_contract import Channel, validate
from mqtt_contract.times import isoformat

FLEET = """cluster_id,province,district,commune,village,lat,lon
a-1,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.3,108.8
a-2,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 2,15.3,108.8
a-3,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 3,15.3,108.8
b-1,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.3,108.7
b-2,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 2,15.3,108.7
l-1,Quảng Ngãi,Lý Sơn,,Thôn Đông,15.4,109.1
"""
ASSET = "cd" * 32


def at_local(day: date, hour: int) -> datetime:
    """An instant given in local time (UTC+7)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=7)


class World:
    """A fleet, bulletins and broadcasts written straight to the database; reports go through ingest."""

    def __init__(self, engine) -> None:
        self.engine = engine
        import_fleet(engine, parse_fleet_csv(FLEET))
        with session_scope(engine) as session:
            session.add(AudioAsset(id=ASSET, size_bytes=1, duration_s=30, storage_key="x.mp3"))
        self.bulletins: dict[str, str] = {}

    def bulletin(self, category: str | None, priority: str = "normal") -> str:
        with session_scope(self.engine) as session:
            bulletin = Bulletin(
                title="t",
                text="x",
                kind="text",
                category=category,
                priority=priority,
                status="approved",
                audio_asset_id=ASSET,
            )
            session.add(bulletin)
        return bulletin.id

    def broadcast(self, bulletin_id: str, created_at: datetime, clusters: list[str], priority: str = "normal"):
        with session_scope(self.engine) as session:
            broadcast = Broadcast(
                bulletin_id=bulletin_id,
                audio_asset_id=ASSET,
                priority=priority,
                target={},
                created_at=created_at,
                expires_at=created_at + timedelta(minutes=10),
                status="dispatched",
            )
            session.add(broadcast)
            session.flush()
            commands = {}
            for cluster_id in clusters:
                commands[cluster_id] = uuid.uuid4().hex
                session.add(
                    Delivery(
                        broadcast_id=broadcast.id, cluster_id=cluster_id, command_id=commands[cluster_id], state="sent"
                    )
                )
        return broadcast.id, commands

    def report(self, cluster_id: str, command_id: str, broadcast_id: str, status: str, **fields) -> None:
        message = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "ts": isoformat(datetime.now(UTC)),
            "command_id": command_id,
            "broadcast_id": broadcast_id,
            "status": status,
            **fields,
        }
        item = Incoming(cluster_id, Channel.REPORT, validate(Channel.REPORT, message), time.time())
        with session_scope(self.engine) as session:
            store_batch(session, [item, item], IngestStats())  # a duplicate too: stored once


def played(world: World, broadcast, cluster_id: str, seconds: float, late: float = 0.0) -> None:
    broadcast_id, commands = broadcast
    world.report(
        cluster_id,
        commands[cluster_id],
        broadcast_id,
        "played",
        played_s=seconds,
        late_s=late,
        started_at=isoformat(datetime.now(UTC)),
        ended_at=isoformat(datetime.now(UTC)),
    )


@pytest.fixture
def world(engine) -> World:
    return World(engine)


def by_name(rows):
    return {r.name: r for r in rows}


def test_commune_figures_match_hand_counts_and_raw_and_follow_late_reports(world):
    day = date(2026, 10, 5)
    dx = world.bulletin("Chuyển đổi số")
    news = world.bulletin(None)
    alarm = world.bulletin("Phòng chống thiên tai", priority="emergency")
    # 1. Chuyển đổi số to Bình Hải and Bình Thạnh, at 06:00 local on 5 Oct.
    b1 = world.broadcast(dx, at_local(day, 6), ["a-1", "a-2", "a-3", "b-1", "b-2"])
    played(world, b1, "a-1", 61.5)
    played(world, b1, "a-2", 61.5, late=120)  # late: started two minutes after its time
    played(world, b1, "b-1", 61.0)
    world.report("a-3", b1[1]["a-3"], b1[0], "failed", reason="download failed: timeout")
    world.report("b-2", b1[1]["b-2"], b1[0], "missed", reason="expired while waiting to play")
    # 2. An emergency to Bình Hải only, 23:30 local on 5 Oct = 16:30 UTC the same day.
    b2 = world.broadcast(alarm, at_local(day, 23) + timedelta(minutes=30), ["a-1", "a-2"], priority="emergency")
    played(world, b2, "a-1", 12.345)
    # 3. News at 00:30 local on 1 Oct (17:30 UTC on 30 Sep): inside the quarter in local time.
    b3 = world.broadcast(news, at_local(date(2026, 10, 1), 0) + timedelta(minutes=30), ["l-1", "b-1"])
    played(world, b3, "l-1", 30.0)
    # 4. Outside the quarter (23:30 local on 31 Dec would be inside; 00:10 on 1 Jan is not).
    b4 = world.broadcast(news, at_local(date(2027, 1, 1), 0) + timedelta(minutes=10), ["a-1"])
    played(world, b4, "a-1", 99.0)

    start, end = date(2026, 10, 1), date(2027, 1, 1)
    with session_scope(world.engine) as session:
        rows = commune_figures(session, start, end)
        raw = commune_figures_raw(session, start, end)
    assert [r.as_dict() for r in rows] == [r.as_dict() for r in raw]
    got = by_name(rows)
    assert list(got) == ["Lý Sơn", "Xã Bình Hải", "Xã Bình Thạnh"]  # Vietnamese order
    hai, thanh, ly_son = got["Xã Bình Hải"], got["Xã Bình Thạnh"], got["Lý Sơn"]
    assert hai.demo_dict() == {"bulletins_played": 2, "broadcast_seconds": 73.845, "clusters_played": 3}
    assert (hai.clusters, hai.clusters_targeted, hai.emergency_played, hai.late) == (3, 5, 1, 1)
    assert (hai.failed, hai.missed, hai.delivered) == (1, 0, 4)
    assert hai.categories == {"Chuyển đổi số": 1, "Phòng chống thiên tai": 1}
    assert hai.cluster_seconds == 135.345  # 61.5 + 61.5 + 12.345
    assert thanh.demo_dict() == {"bulletins_played": 1, "broadcast_seconds": 61.0, "clusters_played": 1}
    assert (thanh.clusters_targeted, thanh.missed, thanh.categories) == (3, 1, {"Chuyển đổi số": 1})
    assert ly_son.demo_dict() == {"bulletins_played": 1, "broadcast_seconds": 30.0, "clusters_played": 1}
    assert ly_son.categories == {"": 1}
    total = total_figures(rows)
    assert (total.bulletins_played, total.broadcast_seconds, total.clusters_played) == (4, 164.845, 5)

    # A report arriving after the rollup (b-2 of the news broadcast) changes the figures on the next call.
    played(world, b3, "b-1", 30.0)
    with session_scope(world.engine) as session:
        assert session.exec(select(StatsDirtyBroadcast.broadcast_id)).all() == [b3[0]]
        again = by_name(commune_figures(session, start, end))
        assert again["Xã Bình Thạnh"].demo_dict() == {
            "bulletins_played": 2,
            "broadcast_seconds": 91.0,
            "clusters_played": 2,
        }
        assert session.exec(select(StatsDirtyBroadcast.broadcast_id)).all() == []
        assert [r.as_dict() for r in commune_figures_raw(session, start, end)] == [
            r.as_dict() for r in commune_figures(session, start, end)
        ]
    # The day boundaries are local: October alone holds the same broadcasts.
    with session_scope(world.engine) as session:
        october = by_name(commune_figures(session, date(2026, 10, 1), date(2026, 11, 1)))
        assert october["Lý Sơn"].bulletins_played == 1
        january = by_name(commune_figures(session, date(2027, 1, 1), date(2027, 2, 1)))
        assert january["Xã Bình Hải"].demo_dict() == {
            "bulletins_played": 1,
            "broadcast_seconds": 99.0,
            "clusters_played": 1,
        }


def test_broadcast_figures_count_outcomes_with_reasons(world):
    bulletin = world.bulletin("Chuyển đổi số")
    b = world.broadcast(bulletin, datetime(2026, 10, 5, 1, tzinfo=UTC), ["a-1", "a-2", "a-3", "b-1", "b-2", "l-1"])
    played(world, b, "a-1", 10)
    played(world, b, "a-2", 10, late=75)
    world.report("a-3", b[1]["a-3"], b[0], "failed", reason="amplifier fault: no output current")
    world.report("b-1", b[1]["b-1"], b[0], "failed", reason="amplifier fault: no output current")
    world.report("b-2", b[1]["b-2"], b[0], "rejected", reason="command expired at 2026-10-05T01:10:00.000Z")
    with session_scope(world.engine) as session:
        figures = broadcast_figures(session, b[0])
    c = figures.counts
    assert (c.targeted, c.delivered, c.played, c.late, c.failed, c.missed, c.rejected) == (6, 5, 2, 1, 2, 0, 1)
    assert figures.pending == 1  # l-1 never answered
    assert figures.reasons["failed"] == {"amplifier fault: no output current": 2}
    assert [name for name, _ in figures.communes] == ["Lý Sơn", "Xã Bình Hải", "Xã Bình Thạnh"]


def test_every_commune_is_listed_and_same_names_are_told_apart(engine):
    import_fleet(
        engine,
        parse_fleet_csv(
            "cluster_id,province,district,commune,village,lat,lon\n"
            "x-1,Tỉnh A,Huyện Một,Xã Bình An,Thôn 1,1,1\n"
            "y-1,Tỉnh A,Huyện Hai,Xã Bình An,Thôn 1,1,1\n"
        ),
    )
    with session_scope(engine) as session:
        rows = commune_figures(session, date(2026, 10, 1), date(2027, 1, 1))
        assert {u.name for u in session.exec(select(AdminUnit))} >= {"Huyện Một", "Huyện Hai"}
    assert sorted(r.name for r in rows) == ["Xã Bình An (Huyện Hai)", "Xã Bình An (Huyện Một)"]
    assert all(r.demo_dict() == dict.fromkeys(DEMO_KEYS, 0) for r in rows)


def test_statistics_api_and_broadcast_report_command(world, database_url):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from bcast.cli import app
    from bcast.demo import admin_headers
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    bulletin = world.bulletin("Chuyển đổi số")
    b = world.broadcast(bulletin, at_local(date(2026, 11, 2), 7), ["a-1", "b-1"])
    played(world, b, "a-1", 42.0)
    world.report("b-1", b[1]["b-1"], b[0], "failed", reason="download failed: timeout")
    runtime = Runtime.from_settings(Settings(database_url=database_url), engine=world.engine)
    with TestClient(create_app(runtime, manage_runtime=False), headers=admin_headers(world.engine)) as client:
        body = client.get("/api/v1/statistics/communes", params={"quarter": "2026Q4"}).json()
        hai = next(c for c in body["communes"] if c["name"] == "Xã Bình Hải")
        assert (hai["bulletins_played"], hai["broadcast_seconds"], hai["categories"]) == (1, 42.0, {"Chuyển đổi số": 1})
        assert body["total"]["clusters_targeted"] == 2
        assert client.get("/api/v1/statistics/communes", params={"quarter": "2026Q9"}).status_code == 422
        figures = client.get(f"/api/v1/statistics/broadcasts/{b[0]}").json()
        assert (figures["targeted"], figures["played"], figures["failed"]) == (2, 1, 1)
        assert figures["reasons"] == {"failed": {"download failed: timeout": 1}}
        assert client.get("/api/v1/statistics/broadcasts/nope").status_code == 404
    result = CliRunner().invoke(app, ["report", "broadcast", b[0], "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "Đã phát trọn vẹn" in result.output and "download failed: timeout" in result.output
