"""Một cụm loa: a technician's page for one cluster (presence, last heartbeat, connections, reports) and its
commands (volume, stop, ping, amplifier off/on) through the real broker, limited to the user's area and audited."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import AuditEntry, ClusterState, Heartbeat, PlaybackReport, PresenceEvent
from mqtt_contract.signing import NO_TRUSTED_KEY
from tests.console.conftest import set_presence, sign_in

BROKER = ("127.0.0.1", 1883)


def _seed(engine, cluster_id: str) -> datetime:
    """Offline for an hour (heartbeats stopped), refusing commands for want of a key; a heartbeat, two reports."""
    since = datetime.now(UTC) - timedelta(hours=1)
    set_presence(engine, [], [cluster_id], since=since)
    with session_scope(engine) as session:
        session.get(ClusterState, cluster_id).last_error = f"refused 1 command(s); last: {NO_TRUSTED_KEY}: ..."
        session.add(PresenceEvent(cluster_id=cluster_id, online=True, at=since - timedelta(hours=5), cause="status"))
        session.add(
            Heartbeat(
                cluster_id=cluster_id,
                sent_at=since - timedelta(minutes=1),
                seq=3,
                uptime_s=100.0,
                firmware="bcast-agent/0.1.0",
                volume=65,
                amplifier="fault",
                cache_free_bytes=512 * 1048576,
                clock_offset_s=1.5,
                last_error="amplifier fault: no output current",
            )
        )
        for n, status in enumerate(("played", "failed")):
            session.add(
                PlaybackReport(
                    id=f"r-{cluster_id}-{n}",
                    cluster_id=cluster_id,
                    command_id=f"c-{n}",
                    status=status,
                    reported_at=since - timedelta(hours=2, minutes=n),
                    received_at=since - timedelta(hours=2, minutes=n),
                    played_s=90.0 if status == "played" else None,
                    reason="HTTP 404 for http://server/a.mp3" if status == "failed" else None,
                )
            )
    return since


def test_a_cluster_page_shows_what_a_technician_checks_before_a_visit(client, engine, world) -> None:
    cluster_id = world.clusters_a[0]
    _seed(engine, cluster_id)
    sign_in(client, "kythuat")
    fleet = client.get("/fleet").text
    assert f'href="/fleet/clusters/{cluster_id}"' in fleet and f"href='/fleet/clusters/{cluster_id}'" in fleet
    page = client.get(f"/fleet/clusters/{cluster_id}").text
    presence = page[page.index('id="presence"') : page.index('id="device"')]
    assert "Mất kết nối" in presence and "Không nhận được tín hiệu định kỳ" in presence
    assert "chưa có khóa của máy chủ" in presence and "bcast agent enrol" in presence
    device = page[page.index('id="device"') : page.index('id="commands"')]
    for fact in ("bcast-agent/0.1.0", ">65<", "Báo hỏng", "+1.5 giây", "512 MB", "amplifier fault: no output current"):
        assert fact in device, fact
    connections = page[page.index('id="connections"') : page.index('id="reports"')]
    assert connections.count("<li>") == 2 and connections.index("Mất kết nối") < connections.index("Trực tuyến")
    reports = page[page.index('id="reports"') :]
    assert "Đã phát" in reports and "Lỗi" in reports and "HTTP 404" in reports
    commands = page[page.index('id="commands"') : page.index('id="connections"')]
    assert 'value="amplifier-off"' in commands and 'value="amplifier-on"' not in commands

    # Held off by a technician: the page says nothing plays, and offers to switch it back on.
    with session_scope(engine) as session:
        beat = session.exec(select(Heartbeat).where(Heartbeat.cluster_id == cluster_id)).one()
        beat.amplifier = "off"
    page = client.get(f"/fleet/clusters/{cluster_id}").text
    device = page[page.index('id="device"') : page.index('id="commands"')]
    assert "Đang tắt theo lệnh: không phát, kể cả tin khẩn cấp" in device
    commands = page[page.index('id="commands"') : page.index('id="connections"')]
    assert 'value="amplifier-on"' in commands and 'value="amplifier-off"' not in commands

    # A viewer sees the page but no commands; another commune's broadcaster sees neither.
    client.cookies.clear()
    sign_in(client, "xem")
    viewer = client.get(f"/fleet/clusters/{cluster_id}")
    assert viewer.status_code == 200 and 'id="commands"' not in viewer.text
    client.cookies.clear()
    sign_in(client, "xa-b")
    assert client.get(f"/fleet/clusters/{cluster_id}").status_code == 403
    assert client.get("/fleet/clusters/no-such-cluster").status_code == 404


@pytest.fixture
def live_bus(runtime):
    """The runtime's bus on the machine's broker under a topic root of its own, and a listener of that root."""
    from broadcast_server.messaging.mqtt_bus import MqttBus

    root = f"t{uuid.uuid4().hex[:12]}"
    received: list[tuple[str, dict]] = []
    arrived = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listen-{root}")
    subscribed = threading.Event()
    listener.on_subscribe = lambda *args: subscribed.set()

    def on_message(_client, _userdata, message) -> None:
        received.append((message.topic, json.loads(message.payload)))
        arrived.set()

    listener.on_message = on_message
    listener.connect(*BROKER)
    listener.subscribe(f"{root}/+/clusters/+/command", qos=1)
    listener.loop_start()
    assert subscribed.wait(10)
    bus = MqttBus(*BROKER, topic_root=root)
    bus.start()
    runtime.bus = bus
    try:
        yield received, arrived
    finally:
        runtime.bus = None
        bus.stop()
        listener.loop_stop()
        listener.disconnect()


def test_a_technician_sends_volume_stop_and_ping_from_the_cluster_page(client, engine, world, live_bus) -> None:
    received, arrived = live_bus
    cluster_id, elsewhere = world.clusters_a[0], world.clusters_b[0]
    csrf = sign_in(client, "kythuat")
    url = f"/fleet/clusters/{cluster_id}/command"
    for bad in ("", "150", "ba mươi", "-1", "²", "1e2"):
        refused = client.post(url, data={"csrf_token": csrf, "kind": "volume", "volume": bad})
        assert refused.status_code == 422 and "từ 0 đến 100" in refused.text
    unknown = client.post(url, data={"csrf_token": csrf, "kind": "reboot"})
    assert unknown.status_code == 422 and "Lệnh không hợp lệ" in unknown.text
    assert client.post(url, data={"kind": "ping"}).status_code == 403  # no CSRF token
    assert received == []

    sent = client.post(url, data={"csrf_token": csrf, "kind": "volume", "volume": "35"})
    assert sent.status_code == 303 and sent.headers["location"] == f"/fleet/clusters/{cluster_id}?sent=volume"
    assert "Đã gửi lệnh “Đặt âm lượng”" in client.get(sent.headers["location"]).text
    assert arrived.wait(10)
    for kind in ("stop", "ping", "amplifier-off", "amplifier-on"):
        assert client.post(url, data={"csrf_token": csrf, "kind": kind}).status_code == 303
    topic, command = received[0]
    assert topic.endswith(f"/{cluster_id}/command") and (command["type"], command["volume"]) == ("volume", 35)

    client.cookies.clear()
    csrf_b = sign_in(client, "xa-b")
    refused = client.post(f"/fleet/clusters/{elsewhere}/command", data={"csrf_token": csrf_b, "kind": "ping"})
    assert refused.status_code == 403  # a broadcaster may not command clusters, even its own commune's
    with session_scope(engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.object_id == cluster_id).order_by(AuditEntry.id)
        ).all()
    assert actions == ["device.volume", "device.stop", "device.ping", "device.amplifier", "device.amplifier"]
    deadline = time.monotonic() + 10  # a bound on waiting, not a measured duration
    while len(received) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(c["type"], c.get("amplifier")) for _, c in received] == [
        ("volume", None),
        ("stop", None),
        ("ping", None),
        ("amplifier", "off"),
        ("amplifier", "on"),
    ]


class _UnansweredBroker:
    """A publisher whose broker acknowledges nothing (it is down): `publish_commands` returns no id."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish_commands(self, commands, *, timeout_s: float = 60.0) -> set[str]:
        self.published.extend(commands)
        return set()


def test_a_command_the_broker_did_not_acknowledge_is_not_called_sent(client, runtime, world) -> None:
    cluster_id = world.clusters_a[0]
    runtime.bus = _UnansweredBroker()
    csrf = sign_in(client, "kythuat")
    answer = client.post(f"/fleet/clusters/{cluster_id}/command", data={"csrf_token": csrf, "kind": "ping"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("?sent=ping&queued=1")
    page = client.get(answer.headers["location"]).text
    assert "chưa được máy chủ MQTT xác nhận" in page and "Đã gửi lệnh" not in page
    assert [c["type"] for _, c in runtime.bus.published] == ["ping"]
