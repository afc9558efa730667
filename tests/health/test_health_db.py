"""Presence in the database: events with causes, heartbeat timeouts at each cluster's own deadline, views."""

from __future__ import annotations

import json
import queue
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from broadcast_server.db.session import session_scope
from broadcast_server.health.alerts import AlertPolicy
from broadcast_server.health.fleet_view import fleet_status, uptime
from broadcast_server.health.monitor import HealthMonitor
from broadcast_server.models import ClusterState, PresenceEvent
from broadcast_server.services.ingest import IngestStats, IngestWorker, store_batch
from mqtt_contract.signing import NO_TRUSTED_KEY

from .conftest import heartbeat, status

T0 = datetime(2026, 10, 1, 1, 0, tzinfo=UTC).timestamp()  # 08:00 local


def ingest(engine, monitor, items, stats=None):
    with session_scope(engine) as session:
        result = store_batch(session, items, stats or IngestStats())
    if monitor is not None:
        monitor.after_batch(result)
    return result


def events(engine, cluster_id=None):
    with session_scope(engine) as session:
        query = select(PresenceEvent).order_by(PresenceEvent.at, PresenceEvent.id)
        if cluster_id:
            query = query.where(PresenceEvent.cluster_id == cluster_id)
        return [(e.cluster_id, e.online, e.cause, e.at.timestamp() - T0) for e in session.exec(query)]


def state(engine, cluster_id):
    with session_scope(engine) as session:
        return session.get(ClusterState, cluster_id)


def test_each_cluster_times_out_at_its_own_deadline_and_keepalive_alone_is_not_health(fleet):
    engine = fleet
    ingest(engine, None, [status("a-1", "online", 1, T0), status("a-2", "online", 1, T0)])
    monitor = HealthMonitor(engine, heartbeat_timeout_s=30)
    monitor.load(now=T0)
    ingest(engine, monitor, [heartbeat("a-1", 1, T0 + 10), heartbeat("a-2", 1, T0 + 25)])
    ingest(engine, monitor, [heartbeat("a-1", 1, T0 + 20)])
    # The next deadline is a-1's last heartbeat + 30 s exactly: not a periodic scan.
    assert monitor.next_wakeup() == T0 + 50
    assert monitor.run_due(T0 + 49.9) == []
    assert [c.cluster_id for c in monitor.run_due(T0 + 50)] == ["a-1"]
    assert monitor.next_wakeup() == T0 + 55
    assert [(c.cluster_id, c.cause) for c in monitor.run_due(T0 + 55)] == [("a-2", "heartbeat_timeout")]
    a1 = state(engine, "a-1")
    assert not a1.online and a1.cause == "heartbeat_timeout" and a1.changed_at.timestamp() == T0 + 50
    # The retained 'online' of that same connection, redelivered, does not bring it back: only heartbeats do.
    ingest(engine, monitor, [status("a-1", "online", 1, T0 + 60)])
    assert not state(engine, "a-1").online
    ingest(engine, monitor, [heartbeat("a-1", 1, T0 + 61)])
    assert state(engine, "a-1").online
    assert events(engine, "a-1") == [
        ("a-1", True, "status", 0),
        ("a-1", False, "heartbeat_timeout", 50),
        ("a-1", True, "heartbeat", 61),
    ]
    # An online cluster whose heartbeats never come (keepalive only) goes offline too.
    ingest(engine, monitor, [status("b-1", "online", 4, T0 + 100)])
    assert [c.cluster_id for c in monitor.run_due(T0 + 129)] == ["a-1"]  # revived at 61, silent since
    assert state(engine, "b-1").online
    assert [c.cluster_id for c in monitor.run_due(T0 + 130)] == ["b-1"]


def test_will_clean_stale_will_and_reconnects_are_recorded_with_their_cause(fleet):
    engine = fleet
    stats = IngestStats()
    ingest(engine, None, [status("a-1", "online", 1, T0)], stats)
    ingest(engine, None, [status("a-1", "online", 2, T0 + 10)], stats)  # reconnected; will of 1 not seen yet
    ingest(engine, None, [status("a-1", "offline", 1, T0 + 11, will=True)], stats)  # stale will
    assert state(engine, "a-1").online and stats.stale_status == 1
    ingest(engine, None, [status("a-1", "offline", 2, T0 + 20, will=True)], stats)
    ingest(engine, None, [status("a-1", "online", 3, T0 + 30), status("a-1", "offline", 3, T0 + 40)], stats)
    assert events(engine, "a-1") == [
        ("a-1", True, "status", 0),
        ("a-1", False, "reconnect", 10),
        ("a-1", True, "status", 10),
        ("a-1", False, "will", 20),
        ("a-1", True, "status", 30),
        ("a-1", False, "clean", 40),
    ]
    with session_scope(engine) as session:
        view = fleet_status(session, datetime.fromtimestamp(T0 + 50, UTC))
    hai = next(c for c in view.communes if c.name == "Xã Bình Hải")
    a1 = next(o for o in hai.offline if o.cluster_id == "a-1")
    assert a1.drops_7d == 3 and a1.cause == "clean" and a1.since.timestamp() == T0 + 40


def test_fleet_status_groups_offline_clusters_and_lists_faults_clocks_and_flapping(fleet, database_url, monkeypatch):
    engine = fleet
    now = time.time()
    items = [status(c, "online", 1, now - 3600) for c in ("a-1", "a-2", "a-3", "b-1")]
    items += [
        heartbeat("a-2", 1, now - 60, amplifier="fault", last_error="amplifier fault: no output current"),
        heartbeat("a-3", 1, now - 60, clock_offset_s=-12.5, last_error=f"refused 1 command(s); last: {NO_TRUSTED_KEY}"),
        heartbeat("a-1", 1, now - 60, clock_offset_s=1.0, last_error="download failed: timeout"),
    ]
    for k in range(4):  # b-1 flaps
        items += [status("b-1", "offline", k + 1, now - 3000 + k * 10, will=True)]
        items += [status("b-1", "online", k + 2, now - 2995 + k * 10)]
    items += [status("a-1", "offline", 1, now - 30, will=True)]
    items += [heartbeat("b-1", 5, now - 20, amplifier="off")]  # a technician holds it off
    ingest(engine, None, items)
    with session_scope(engine) as session:
        view = fleet_status(session, datetime.now(UTC), clock_offset_threshold_s=5)
    assert (view.clusters, view.online) == (5, 3)
    by_name = {c.name: c for c in view.communes}
    assert [c.name for c in view.communes] == ["Xã Bình Hải", "Xã Bình Thạnh"]
    assert [o.cluster_id for o in by_name["Xã Bình Hải"].offline] == ["a-1"]
    a1 = by_name["Xã Bình Hải"].offline[0]
    assert a1.last_error == "download failed: timeout" and a1.cause == "will" and a1.drops_7d == 1
    assert [(o.cluster_id, o.since) for o in by_name["Xã Bình Thạnh"].offline] == [("b-2", None)]  # never seen
    assert [n.cluster_id for n in view.faulty_amplifiers] == ["a-2"]
    assert [(n.cluster_id, n.online) for n in view.amplifiers_off] == [("b-1", True)]
    assert [(n.cluster_id, n.value) for n in view.clock_off] == [("a-3", -12.5)]
    assert [(n.cluster_id, n.online) for n in view.refusing_commands] == [("a-3", True)]  # not enrolled
    assert [(n.cluster_id, n.value) for n in view.flapping] == [("b-1", 4)]

    # The same through the command line (Vietnamese) and the API.
    from bcast.cli import app

    monkeypatch.setenv("BCAST_HEALTH_CLOCK_OFFSET_THRESHOLD_S", "5")
    result = CliRunner().invoke(app, ["fleet", "status", "--database-url", database_url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Cụm loa mất kết nối theo xã" in result.output and "mất kết nối đột ngột" in result.output
    assert "download failed: timeout" in result.output and "chưa từng kết nối" in result.output
    assert "Cụm loa báo hỏng ampli" in result.output and "-12.5" in result.output
    assert "Cụm loa từ chối mọi lệnh: chưa có khóa của máy chủ" in result.output
    assert "Cụm loa bị tắt ampli theo lệnh" in result.output
    result = CliRunner().invoke(app, ["fleet", "status", "--json", "--database-url", database_url])
    document = json.loads(result.output)
    assert [o["cluster_id"] for c in document["communes"] for o in c["offline"]] == ["a-1", "b-2"]
    assert [n["cluster_id"] for n in document["refusing_commands"]] == ["a-3"]
    assert [n["cluster_id"] for n in document["amplifiers_off"]] == ["b-1"]

    from bcast.demo import admin_headers
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    runtime = Runtime.from_settings(Settings(database_url=database_url), engine=engine)
    with TestClient(create_app(runtime, manage_runtime=False), headers=admin_headers(engine)) as client:
        body = client.get("/api/v1/fleet/status", params={"only_offline": True}).json()
        assert [(c["name"], [o["cluster_id"] for o in c["offline"]]) for c in body["communes"]] == [
            ("Xã Bình Hải", ["a-1"]),
            ("Xã Bình Thạnh", ["b-2"]),
        ]
        assert body["faulty_amplifiers"][0]["cluster_id"] == "a-2" and body["offline"] == 2
        assert [n["cluster_id"] for n in body["refusing_commands"]] == ["a-3"]
        assert [n["cluster_id"] for n in body["amplifiers_off"]] == ["b-1"]
        rows = client.get("/api/v1/fleet/uptime").json()
        assert {r["cluster_id"] for r in rows} == {"a-1", "a-2", "a-3", "b-1", "b-2"}
        assert (
            client.get(
                "/api/v1/fleet/uptime", params={"start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"}
            ).status_code
            == 422
        )


def test_uptime_per_cluster_over_a_period(fleet):
    engine = fleet
    base = T0
    ingest(
        engine,
        None,
        [
            status("a-1", "online", 1, base - 3600),  # before the period: online at its start
            status("a-1", "offline", 1, base + 1800, will=True),
            status("a-1", "online", 2, base + 2700),
            status("a-2", "online", 1, base + 900),
        ],
    )
    with session_scope(engine) as session:
        rows = {
            r.cluster_id: r
            for r in uptime(session, datetime.fromtimestamp(base, UTC), datetime.fromtimestamp(base + 3600, UTC))
        }
    assert rows["a-1"].uptime == 0.75 and rows["a-1"].drops == 1
    assert rows["a-2"].uptime == 0.75 and rows["a-2"].drops == 0
    assert rows["b-1"].uptime == 0.0 and rows["a-1"].commune == "Xã Bình Hải"


def test_the_ingest_worker_fires_a_timeout_on_time_without_messages(fleet):
    """Real time: nothing arrives after the heartbeat, and the worker still marks it offline (bounded wait)."""
    engine = fleet
    events_queue: queue.Queue = queue.Queue()
    alerts = []
    monitor = HealthMonitor(
        engine,
        heartbeat_timeout_s=0.6,
        policy=AlertPolicy(offline_after_s=0.3, storm_min_clusters=50),
        sink=alerts.append,
    )
    worker = IngestWorker(engine, events_queue, health=monitor)
    worker.start()
    try:
        now = time.time()
        events_queue.put(status("a-1", "online", 1, now))
        events_queue.put(heartbeat("a-1", 1, now))
        deadline = time.monotonic() + 10
        while state_or_none(engine, "a-1") is None or state(engine, "a-1").online:
            assert time.monotonic() < deadline, "not offline within the bound"
            time.sleep(0.05)
        offline = state(engine, "a-1")
        assert offline.cause == "heartbeat_timeout"
        assert offline.changed_at.timestamp() >= now + 0.6  # never before its deadline
        while not any(a.kind == "cluster_offline" for a in alerts):
            assert time.monotonic() < deadline, "no alert within the bound"
            time.sleep(0.05)
        assert worker.stats.timeouts == 1
    finally:
        worker.stop()


def state_or_none(engine, cluster_id):
    with session_scope(engine) as session:
        return session.get(ClusterState, cluster_id)


def test_an_old_database_state_gets_a_full_timeout_after_a_server_restart(fleet):
    engine = fleet
    ingest(engine, None, [status("a-1", "online", 1, T0), heartbeat("a-1", 1, T0)])
    monitor = HealthMonitor(engine, heartbeat_timeout_s=30)
    monitor.load(now=T0 + 3600)  # the server was down for an hour
    assert monitor.next_wakeup() == T0 + 3630
    assert monitor.run_due(T0 + 3629) == []
    assert len(monitor.run_due(T0 + 3630)) == 1
