"""Dispatch and ingest services on SQLite and PostgreSQL, without a broker (the publisher is a port)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.domain.targeting import UnknownTarget
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.models import AdminUnit, AudioAsset, Bulletin, ClusterState, Delivery, PlaybackReport
from broadcast_server.services.coverage_query import broadcast_coverage
from broadcast_server.services.dispatch import DispatchError, Repeat, Target, create_broadcast, send_broadcast
from broadcast_server.services.fleet_import import import_fleet
from broadcast_server.services.ingest import IngestStats, store_batch
from mqtt_contract import Channel, validate
from mqtt_contract.times import isoformat

FLEET = """cluster_id,province,district,commune,village,lat,lon
a-1,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.3,108.8
a-2,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 2,15.3,108.8
b-1,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.3,108.7
l-1,Quảng Ngãi,Lý Sơn,,Thôn Đông,15.4,109.1
"""


class RecordingPublisher:
    """Stands in for the broker: keeps every command and acknowledges all but the clusters in `drop`."""

    def __init__(self, drop: set[str] = frozenset()) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.drop = drop

    def publish_commands(self, commands, *, timeout_s: float = 60.0) -> set[str]:
        self.sent.extend(commands)
        return {c["id"] for cluster, c in commands if cluster not in self.drop}


@pytest.fixture
def seeded(engine):
    import_fleet(engine, parse_fleet_csv(FLEET))
    with session_scope(engine) as session:
        session.add(AudioAsset(id="ab" * 32, size_bytes=1000, duration_s=12.5, storage_key="x.mp3"))
        session.flush()
        draft = Bulletin(title="Nháp", text="x", kind="text", audio_asset_id="ab" * 32)
        ready = Bulletin(title="Bản tin", text="x", kind="text", audio_asset_id="ab" * 32, status="approved")
        session.add_all([draft, ready])
        units = {u.name: u.id for u in session.exec(select(AdminUnit))}
    return engine, units, draft.id, ready.id


def incoming(cluster_id: str, channel: Channel, message: dict) -> Incoming:
    return Incoming(cluster_id, channel, validate(channel, message), time.time())


def report(command_id: str, status: str, report_id: str | None = None, broadcast_id: str | None = None) -> dict:
    return {
        "v": 1,
        "id": report_id or uuid.uuid4().hex,
        "ts": isoformat(datetime.now(UTC)),
        "command_id": command_id,
        "broadcast_id": broadcast_id,
        "status": status,
    }


def test_broadcast_targets_units_at_any_depth_and_single_clusters(seeded):
    engine, units, _, ready = seeded
    with session_scope(engine) as session:
        _, deliveries = create_broadcast(
            session, ready, Target(unit_ids=(units["Xã Bình Hải"], units["Lý Sơn"]), cluster_ids=("b-1",)), ttl_s=60
        )
    assert sorted(d.cluster_id for d in deliveries) == ["a-1", "a-2", "b-1", "l-1"]
    assert len({d.command_id for d in deliveries}) == 4


def test_bad_targets_and_unapproved_bulletins_change_nothing(seeded, snapshot, database_url):
    engine, units, draft, ready = seeded
    before = snapshot(database_url)
    for bulletin, target, error in [
        (ready, Target(unit_ids=(999_999,)), UnknownTarget),
        (ready, Target(cluster_ids=("nope",)), UnknownTarget),
        (ready, Target(), UnknownTarget),
        (draft, Target(unit_ids=(units["Bình Sơn"],)), DispatchError),
        ("missing", Target(unit_ids=(units["Bình Sơn"],)), DispatchError),
    ]:
        with pytest.raises(error), session_scope(engine) as session:
            create_broadcast(session, bulletin, target, ttl_s=60)
    assert snapshot(database_url) == before


def test_send_publishes_valid_commands_and_marks_only_acknowledged_ones_sent(seeded):
    engine, units, _, ready = seeded
    with session_scope(engine) as session:
        broadcast, _ = create_broadcast(session, ready, Target(unit_ids=(units["Bình Sơn"],)), ttl_s=60)
    publisher = RecordingPublisher(drop={"b-1"})
    assert send_broadcast(engine, publisher, broadcast.id, "http://127.0.0.1:9") == 2
    for _cluster_id, command in publisher.sent:
        validate(Channel.COMMAND, command)
        assert command["play"]["audio"]["url"] == f"http://127.0.0.1:9/api/v1/audio/{'ab' * 32}"
    with session_scope(engine) as session:
        states = dict(session.exec(select(Delivery.cluster_id, Delivery.state)).all())
    assert states == {"a-1": "sent", "a-2": "sent", "b-1": "queued"}
    # Sending again publishes only what is still queued.
    again = RecordingPublisher()
    send_broadcast(engine, again, broadcast.id, "http://127.0.0.1:9")
    assert [c for c, _ in again.sent] == ["b-1"]


def test_a_repeated_alert_at_a_forced_level_reaches_the_command(seeded, snapshot, database_url):
    engine, units, _, ready = seeded
    before = snapshot(database_url)
    for repeat, volume in [(Repeat(1), 101), (Repeat(1), -1)]:
        with pytest.raises(DispatchError), session_scope(engine) as session:
            create_broadcast(
                session, ready, Target(unit_ids=(units["Bình Sơn"],)), ttl_s=60, repeat=repeat, volume=volume
            )
    for times, interval_s in [(11, 600), (0, 600), (3, 30)]:
        with pytest.raises(DispatchError):
            Repeat(times, interval_s)
    assert snapshot(database_url) == before  # refused: nothing stored
    with session_scope(engine) as session:
        broadcast, _ = create_broadcast(
            session, ready, Target(cluster_ids=("a-1",)), ttl_s=60, repeat=Repeat(3, 600), volume=100
        )
    publisher = RecordingPublisher()
    send_broadcast(engine, publisher, broadcast.id, "http://127.0.0.1:9")
    [(_, command)] = publisher.sent
    validate(Channel.COMMAND, command)
    assert command["play"]["repeat"] == {"times": 3, "interval_s": 600} and command["play"]["volume"] == 100
    with session_scope(engine) as session:  # a plain broadcast carries neither
        plain, _ = create_broadcast(session, ready, Target(cluster_ids=("a-2",)), ttl_s=60)
    publisher = RecordingPublisher()
    send_broadcast(engine, publisher, plain.id, "http://127.0.0.1:9")
    assert "repeat" not in publisher.sent[0][1]["play"] and "volume" not in publisher.sent[0][1]["play"]


def test_reports_are_stored_once_and_the_first_outcome_stands(seeded):
    engine, units, _, ready = seeded
    with session_scope(engine) as session:
        broadcast, deliveries = create_broadcast(session, ready, Target(unit_ids=(units["Bình Sơn"],)), ttl_s=60)
    command = {d.cluster_id: d.command_id for d in deliveries}
    played = report(command["a-1"], "played", broadcast_id=broadcast.id)
    stats = IngestStats()
    with session_scope(engine) as session:
        store_batch(session, [incoming("a-1", Channel.REPORT, played)] * 2, stats)  # twice in one batch
    with session_scope(engine) as session:
        store_batch(
            session,
            [
                incoming("a-1", Channel.REPORT, played),  # and again later
                incoming("a-1", Channel.REPORT, report(command["a-1"], "failed")),  # a late contradiction
                incoming("b-1", Channel.REPORT, report(command["b-1"], "missed")),
                incoming("a-2", Channel.REPORT, report(command["b-1"], "played")),  # someone else's command
                incoming("ghost", Channel.REPORT, report("x", "played")),
            ],
            stats,
        )
    with session_scope(engine) as session:
        assert len(session.exec(select(PlaybackReport)).all()) == 4  # ghost dropped, duplicates not stored
        states = dict(session.exec(select(Delivery.cluster_id, Delivery.state)).all())
        coverage, counts = broadcast_coverage(session, broadcast.id)
    assert states == {"a-1": "played", "a-2": "queued", "b-1": "missed"}
    assert stats.duplicate_reports == 2 and stats.unknown_cluster == 1
    assert {r.name: (r.clusters, r.played) for r in coverage.rows} == {"Xã Bình Hải": (2, 1), "Xã Bình Thạnh": (1, 0)}
    assert counts["played"] == 1 and counts["missed"] == 1


def test_stale_last_will_after_a_newer_connect_is_ignored(seeded):
    engine = seeded[0]
    status = lambda state, seq: incoming("a-1", Channel.STATUS, {"v": 1, "state": state, "seq": seq})  # noqa: E731
    stats = IngestStats()
    with session_scope(engine) as session:
        store_batch(session, [status("online", 1), status("online", 2)], stats)
    with session_scope(engine) as session:
        store_batch(session, [status("offline", 1)], stats)  # the will of connection 1, delivered late
        state = session.get(ClusterState, "a-1")
        assert state.online and state.seq == 2
    assert stats.stale_status == 1
    with session_scope(engine) as session:
        store_batch(session, [status("offline", 2)], stats)
        assert not session.get(ClusterState, "a-1").online


def test_heartbeats_update_last_seen_and_error(seeded):
    engine = seeded[0]
    beat = {
        "v": 1,
        "ts": isoformat(datetime.now(UTC)),
        "seq": 1,
        "uptime_s": 5,
        "firmware": "f/1",
        "amplifier": "fault",
        "last_error": "amplifier fault: no output current",
    }
    with session_scope(engine) as session:
        store_batch(session, [incoming("a-2", Channel.HEARTBEAT, beat)], IngestStats())
    with session_scope(engine) as session:
        state = session.get(ClusterState, "a-2")
        assert state.last_error == beat["last_error"] and state.firmware == "f/1"


def test_clock_offset_is_estimated_when_the_agent_cannot_tell(seeded):
    engine = seeded[0]
    ahead = datetime.now(UTC) + timedelta(seconds=120)  # a box whose clock runs two minutes fast
    beat = {"v": 1, "ts": isoformat(ahead), "seq": 1, "uptime_s": 5, "firmware": "f/1", "clock_offset_s": None}
    with session_scope(engine) as session:
        store_batch(session, [incoming("a-1", Channel.HEARTBEAT, beat)], IngestStats())
    with session_scope(engine) as session:
        assert 115 < session.get(ClusterState, "a-1").clock_offset_s < 125


def test_stopping_a_broadcast_settles_the_unsent_and_tells_the_clusters_that_hold_it(seeded):
    from broadcast_server.models import AuditEntry
    from broadcast_server.services.broadcast_stop import stop_broadcast

    engine, units, _, ready = seeded
    with session_scope(engine) as session:
        broadcast, _ = create_broadcast(session, ready, Target(unit_ids=(units["Bình Sơn"],)), ttl_s=3600)
        other, _ = create_broadcast(session, ready, Target(cluster_ids=("a-1",)), ttl_s=3600)
    send_broadcast(engine, RecordingPublisher(drop={"b-1"}), broadcast.id, "http://127.0.0.1:9")  # b-1 unsent
    with session_scope(engine) as session:  # a-2 has played already
        played = session.exec(
            select(Delivery).where(Delivery.broadcast_id == broadcast.id, Delivery.cluster_id == "a-2")
        )
        played.one().state = "played"
    publisher = RecordingPublisher()
    with session_scope(engine) as session:
        result = stop_broadcast(session, publisher, None, broadcast.id, ttl_s=300)
    assert (result.never_sent, result.told, result.acknowledged) == (1, 2, 2)
    assert sorted(cluster for cluster, _ in publisher.sent) == ["a-1", "b-1"]  # not a-2: it finished
    for _cluster, command in publisher.sent:
        validate(Channel.COMMAND, command)
        assert (command["type"], command["stop"]) == ("stop", {"broadcast_id": broadcast.id})
        assert datetime.fromisoformat(command["expires_at"]) > broadcast.expires_at  # lives as long as the play
    with session_scope(engine) as session:
        states = dict(
            session.exec(select(Delivery.cluster_id, Delivery.state).where(Delivery.broadcast_id == broadcast.id)).all()
        )
        untouched = session.exec(select(Delivery.state).where(Delivery.broadcast_id == other.id)).one()
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.stop")).one()
    assert states == {"a-1": "sent", "a-2": "played", "b-1": "stopped"}  # a-1 settles when its agent reports
    assert untouched == "queued" and audit.object_id == broadcast.id
    # What was unsent stays unsent: a later dispatch (a restarted server) finds nothing queued.
    again = RecordingPublisher()
    send_broadcast(engine, again, broadcast.id, "http://127.0.0.1:9")
    assert again.sent == []
    with pytest.raises(DispatchError), session_scope(engine) as session:
        stop_broadcast(session, publisher, None, "no-such-broadcast", ttl_s=300)
