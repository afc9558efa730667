"""Scheduled airings in the statistics, on SQLite and PostgreSQL: pushed windows say who was sent an item,
the agents' reports (through the real ingest) say what came of it, and the rollups count it like a broadcast.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import ScheduledAiring, ScheduledAiringTarget, StatsAiringUnit
from broadcast_server.scheduling.push import push_schedules
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.services.ingest import IngestStats, store_batch
from broadcast_server.statistics.figures import DeliveryRow, ItemReport, airing_outcome, total_figures
from broadcast_server.statistics.periods import local_day
from broadcast_server.statistics.queries import commune_figures, commune_figures_raw
from broadcast_server.statistics.rollups import refresh_rollups
from mqtt_contract import Channel, validate
from mqtt_contract.times import isoformat

from .test_push import COASTAL, T1, RecordingPublisher

# The Monday "Chuyển đổi số" column: 17:15 local, every Bình Sơn cluster, one item (category Chuyển đổi số).
COLUMN = "chuyen-doi-so-thu-hai@20261123T1015Z#0"
COLUMN_AT = datetime(2026, 11, 23, 17, 15, tzinfo=LOCAL_TZ).astimezone(UTC)
MONDAY = local_day(COLUMN_AT)


def report(cluster_id: str, status: str, at: datetime, **fields) -> Incoming:
    message = {"v": 1, "id": uuid.uuid4().hex, "ts": isoformat(at), "command_id": COLUMN, "status": status, **fields}
    validate(Channel.REPORT, message)
    return Incoming(cluster_id, Channel.REPORT, message, at.timestamp())


def ingest(engine, *items: Incoming) -> None:
    with session_scope(engine) as session:
        store_batch(session, list(items), IngestStats())


def targets(engine, airing_id: str) -> set[str]:
    with session_scope(engine) as session:
        return set(
            session.exec(select(ScheduledAiringTarget.cluster_id).where(ScheduledAiringTarget.airing_id == airing_id))
        )


def by_name(rows) -> dict:
    return {r.name: r for r in rows}


def test_a_pushed_window_records_each_item_and_who_was_sent_it(world, public_url, clusters_of):
    publisher = RecordingPublisher()
    publisher.refuse = {clusters_of("Xã Bình Hải")[0]}  # offline: still sent, so still targeted
    push_schedules(world, publisher, public_url, T1)
    assert targets(world, COLUMN) == set(clusters_of("Bình Sơn"))
    with session_scope(world) as session:
        column = session.get(ScheduledAiring, COLUMN)
        assert (column.slot_id, column.position, column.start_at) == ("chuyen-doi-so-thu-hai", 0, COLUMN_AT)
        morning = session.exec(
            select(ScheduledAiring.id, ScheduledAiring.title, ScheduledAiring.priority)
            .where(ScheduledAiring.slot_id == "sang-hang-ngay", ScheduledAiring.start_at < T1 + timedelta(days=1))
            .order_by(ScheduledAiring.id)
        ).all()
    # Tuesday 05:30: three items, one airing each, numbered in play order as the agent numbers them in its
    # reports: the priority item first.
    assert morning == [
        ("sang-hang-ngay@20261123T2230Z#0", "Thông báo của UBND huyện", "priority"),
        ("sang-hang-ngay@20261123T2230Z#1", "Lời chào buổi sáng", "normal"),
        ("sang-hang-ngay@20261123T2230Z#2", "Tin nông nghiệp", "normal"),
    ]
    assert targets(world, "thoi-tiet-ngay-thuong@20261123T0400Z#0") == set(clusters_of(*COASTAL))


def test_a_narrowed_target_drops_only_airings_still_to_come(world, apply, example_week, public_url, clusters_of):
    publisher = RecordingPublisher()
    push_schedules(world, publisher, public_url, T1)
    everyone = set(clusters_of("Bình Sơn"))
    # After Monday's column aired, the slot is narrowed to one commune: the next Monday's airing (inside a
    # window pushed on Sunday) goes to Bình Hải only, while the one that aired stays counted for everyone.
    narrowed = example_week.replace(
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn]}",
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}",
    )
    sunday = datetime(2026, 11, 29, 18, 0, tzinfo=LOCAL_TZ).astimezone(UTC)
    push_schedules(world, publisher, public_url, sunday)  # the old target still: next Monday for everyone
    next_monday = "chuyen-doi-so-thu-hai@20261130T1015Z#0"
    assert targets(world, next_monday) == everyone
    apply(narrowed)
    push_schedules(world, publisher, public_url, sunday + timedelta(minutes=5))
    assert targets(world, next_monday) == set(clusters_of("Xã Bình Hải"))
    assert targets(world, COLUMN) == everyone


def test_reports_count_like_a_broadcast_and_a_late_report_updates_the_figures(world, public_url, clusters_of):
    push_schedules(world, RecordingPublisher(), public_url, T1)
    hai = clusters_of("Xã Bình Hải")
    chau = clusters_of("Xã Bình Châu")
    everyone = clusters_of("Bình Sơn")

    # Before it is due the column is not in the figures, though it was sent.
    with session_scope(world) as session:
        refresh_rollups(session, COLUMN_AT - timedelta(minutes=1))
        assert session.exec(select(StatsAiringUnit).where(StatsAiringUnit.airing_id == COLUMN)).all() == []

    played = {"started_at": isoformat(COLUMN_AT), "ended_at": isoformat(COLUMN_AT + timedelta(seconds=31))}
    ingest(
        world,
        report(hai[0], "played", COLUMN_AT + timedelta(seconds=31), played_s=31.2, late_s=0.4, **played),
        # Cut by an alert, then resumed and played to the end: played, once.
        report(hai[1], "stopped", COLUMN_AT + timedelta(seconds=5), played_s=5.0, reason="interrupted"),
        report(hai[1], "played", COLUMN_AT + timedelta(minutes=3), played_s=30.9, late_s=120.5, **played),
        # Cut and dropped (the column's policy): stopped.
        report(chau[0], "stopped", COLUMN_AT + timedelta(seconds=5), played_s=5.0, reason="interrupted"),
        report(chau[1], "missed", COLUMN_AT + timedelta(minutes=16), reason="not played within 900 s"),
    )
    now = COLUMN_AT + timedelta(hours=2)
    with session_scope(world) as session:
        refresh_rollups(session, now)
        monday = by_name(commune_figures(session, MONDAY, MONDAY + timedelta(days=1), refresh=False))
        raw = commune_figures_raw(session, MONDAY, MONDAY + timedelta(days=1), now=now)
    assert list(monday.values()) == raw  # rollups and raw tables agree
    bình_hải = monday["Xã Bình Hải"]
    assert bình_hải.bulletins_played == 1
    assert bình_hải.clusters_played == 2
    assert bình_hải.late == 1  # started 120.5 s after its time, past the 60 s threshold
    assert bình_hải.broadcast_seconds == 31.2
    assert bình_hải.categories == {"Chuyển đổi số": 1}
    assert monday["Xã Bình Châu"].bulletins_played == 0
    assert (monday["Xã Bình Châu"].stopped, monday["Xã Bình Châu"].missed) == (1, 1)
    total = total_figures(monday.values())
    # Monday's airings due by 19:15: the coastal weather at 11:00, the afternoon bulletin's two items at 17:00,
    # the column at 17:15; every cluster was sent each airing meant for it.
    sent = len(everyone) * 3 + len(clusters_of(*COASTAL))
    assert total.clusters_targeted == sent
    assert (total.delivered, total.clusters_played, total.stopped, total.missed) == (4, 2, 1, 1)

    # A report that arrives a day late (an island commune back on the air) is counted at the next refresh,
    # though the column is long out of the refresh's overlap: ingest marked it for recomputing.
    ingest(world, report(chau[2], "played", now + timedelta(days=1), played_s=30.0, late_s=0.0, **played))
    with session_scope(world) as session:
        refresh_rollups(session, now + timedelta(days=1, hours=2))
        chau_now = by_name(commune_figures(session, MONDAY, MONDAY + timedelta(days=1), refresh=False))["Xã Bình Châu"]
    assert (chau_now.bulletins_played, chau_now.clusters_played, chau_now.categories) == (1, 1, {"Chuyển đổi số": 1})


def test_an_items_outcome_at_a_cluster_folds_all_its_reports() -> None:
    """Pure: played to the end at any time wins (even stamped before a cut, by a clock set back in between),
    else the latest outcome; nothing reported leaves the item targeted only."""
    at = COLUMN_AT
    cut = ItemReport("stopped", at + timedelta(seconds=5), 5.0, reason="interrupted")
    played = ItemReport("played", at + timedelta(minutes=3), 30.9, 120.5)
    early_played = ItemReport("played", at - timedelta(minutes=1), 31.0, 0.0)  # the clock was set back later
    missed = ItemReport("missed", at + timedelta(minutes=16), reason="not played within 900 s")
    assert airing_outcome(COLUMN, "c", [cut, played]) == DeliveryRow(COLUMN, "c", "played", 30.9, 120.5)
    assert airing_outcome(COLUMN, "c", [early_played, cut]).state == "played"
    assert airing_outcome(COLUMN, "c", [played, early_played]).played_s == 31.0  # the first play counts
    assert airing_outcome(COLUMN, "c", [cut, missed]).state == "missed"
    assert airing_outcome(COLUMN, "c", [missed, cut]).state == "missed"
    assert airing_outcome(COLUMN, "c", []) == DeliveryRow(COLUMN, "c", "queued")
    assert airing_outcome(COLUMN, "c", [ItemReport("applied", at)]).state == "queued"  # not an outcome


def test_one_airings_figures_through_the_api_and_the_report_command(world, public_url, clusters_of, database_url):
    """Per airing, as per broadcast: targeted, outcomes with reasons, per commune; a commune account sees its own."""
    from urllib.parse import quote

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from bcast.cli import app
    from bcast.demo import admin_headers
    from broadcast_server.accounts.principal import Role
    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.api.app import create_app
    from broadcast_server.models import AdminUnit
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    push_schedules(world, RecordingPublisher(), public_url, T1)
    hai, chau = clusters_of("Xã Bình Hải"), clusters_of("Xã Bình Châu")
    ingest(
        world,
        report(hai[0], "played", COLUMN_AT + timedelta(seconds=31), played_s=31.2, late_s=0.4),
        report(chau[0], "missed", COLUMN_AT + timedelta(minutes=16), reason="not played within 900 s"),
    )
    with session_scope(world) as session:
        hai_unit = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        user = create_user(
            session, username="xa-binh-hai", password="mat-khau-dai-du-16", role=Role.VIEWER, scope_unit_id=hai_unit
        )
        commune_token, _ = issue_token(session, user.id, name="api")
    runtime = Runtime.from_settings(Settings(database_url=database_url), engine=world)
    path = f"/api/v1/statistics/airings/{quote(COLUMN, safe='')}"
    with TestClient(create_app(runtime, manage_runtime=False), headers=admin_headers(world)) as client:
        figures = client.get(path).json()
        assert (figures["targeted"], figures["delivered"], figures["played"], figures["missed"]) == (
            len(clusters_of("Bình Sơn")),
            2,
            1,
            1,
        )
        assert figures["reasons"] == {"missed": {"not played within 900 s": 1}}
        assert (
            client.get(f"/api/v1/statistics/airings/{quote('khong-co@20261123T1015Z#0', safe='')}").status_code == 404
        )
        assert client.get("/api/v1/statistics/airings/not-an-airing").status_code == 422
        mine = client.get(path, headers={"Authorization": f"Bearer {commune_token}"}).json()
        assert (mine["targeted"], mine["played"], mine["missed"]) == (len(hai), 1, 0)
        assert [c["name"] for c in mine["communes"]] == ["Xã Bình Hải"]
    result = CliRunner().invoke(app, ["report", "broadcast", COLUMN, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "Đã phát trọn vẹn" in result.output and "not played within 900 s" in result.output
