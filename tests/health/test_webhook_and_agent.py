"""Alerts reach a loopback webhook; a real agent killed without DISCONNECT shows offline in time."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.health.alerts import Alert, AlertPolicy
from broadcast_server.health.fleet_view import fleet_status
from broadcast_server.health.monitor import HealthMonitor
from broadcast_server.health.webhook import WebhookSender
from broadcast_server.messaging.mqtt_bus import MqttBus
from broadcast_server.services.fleet_import import import_fleet
from broadcast_server.services.ingest import IngestWorker
from mqtt_contract import Channel, Topics, encode

from .conftest import status

BROKER = ("127.0.0.1", 1883)


class Receiver:
    """A loopback HTTP server that records JSON bodies; the first ``fail_first`` requests get a 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                receiver.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.requests <= fail_first:
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.bodies):
            assert time.monotonic() < deadline, f"not received in time: {self.bodies}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    yield r
    r.close()


def test_webhook_retries_and_posts_vietnamese_json(receiver):
    sender = WebhookSender(receiver.url, backoff_s=0.05)
    alert = Alert("cluster_offline", datetime(2026, 10, 1, 1, tzinfo=UTC), "Cụm loa a-1 (Xã An) mất kết nối", ("a-1",))
    sender(alert)
    sender.close()
    assert receiver.requests == 2 and sender.sent == 1  # the first POST got a 500 and was retried
    assert receiver.bodies == [
        {
            "kind": "cluster_offline",
            "at": "2026-10-01T01:00:00Z",
            "message": "Cụm loa a-1 (Xã An) mất kết nối",
            "cluster_ids": ["a-1"],
            "commune": None,
        }
    ]


def test_ingest_alerts_by_webhook_once_per_episode_and_one_grouped_alert_for_a_mass_drop(fleet, receiver):
    engine = fleet
    sender = WebhookSender(receiver.url, backoff_s=0.05)
    policy = AlertPolicy(
        offline_after_s=0.3,
        commune_min_online_share=0.0,
        storm_window_s=5,
        storm_min_clusters=4,
        storm_min_fraction=0.5,
        settle_s=0.5,
    )
    monitor = HealthMonitor(engine, heartbeat_timeout_s=3600, policy=policy, sink=sender)
    import queue

    events: queue.Queue = queue.Queue()
    worker = IngestWorker(engine, events, health=monitor)
    worker.start()
    try:
        clusters = ["a-1", "a-2", "a-3", "b-1", "b-2"]
        for c in clusters:
            events.put(status(c, "online", 1, time.time()))
        events.put(status("a-1", "offline", 1, time.time(), will=True))
        receiver.wait_for(lambda b: [x["kind"] for x in b] == ["cluster_offline"])
        assert receiver.bodies[0]["message"].startswith("Cụm loa a-1 (Xã Bình Hải) mất kết nối từ")
        events.put(status("a-1", "online", 2, time.time()))
        receiver.wait_for(lambda b: [x["kind"] for x in b][-1:] == ["cluster_recovered"])
        # A broker restart: every cluster drops at once, then comes back.
        for c in clusters:
            events.put(status(c, "offline", 2 if c == "a-1" else 1, time.time(), will=True))
        receiver.wait_for(lambda b: any(x["kind"] == "mass_offline" for x in b))
        time.sleep(0.5)  # past every per-cluster threshold, still inside the storm: nothing more may come
        for c in clusters:
            events.put(status(c, "online", 3, time.time()))
        receiver.wait_for(lambda b: any(x["kind"] == "mass_recovered" for x in b))
        worker.wait_idle()
    finally:
        worker.stop()
        sender.close()
    kinds = [x["kind"] for x in receiver.bodies]
    assert kinds == ["cluster_offline", "cluster_recovered", "mass_offline", "mass_recovered"]
    assert receiver.bodies[2]["count"] == 4  # the threshold: the fifth drop joined the storm silently


async def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def _presence(engine, cluster_id: str):
    with session_scope(engine) as session:
        view = fleet_status(session, datetime.now(UTC))
    for commune in view.communes:
        for offline in commune.offline:
            if offline.cluster_id == cluster_id:
                return False, offline.cause
    return True, None


class FreezableProxy:
    """TCP proxy to the broker; ``freeze()`` stops forwarding without closing anything (a cut cable)."""

    def __init__(self) -> None:
        self.frozen = False
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*BROKER)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    if not self.frozen:
                        dst.write(data)
                        await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.broker
async def test_a_killed_agent_shows_offline_in_time_and_a_stale_will_after_reconnect_is_ignored(engine, tmp_path):
    """Acceptance 2, on the machine's Mosquitto with a real agent (simulated player) and the server's bus."""
    from speaker_agent import Agent, AgentConfig
    from speaker_agent.clock import SystemClock
    from speaker_agent.player import SimulatedPlayer

    root = f"t{uuid.uuid4().hex[:12]}"
    import_fleet(
        engine,
        parse_fleet_csv(
            "cluster_id,province,district,commune,village,lat,lon\n"
            "k-1,Tỉnh A,Huyện B,Xã C,Thôn 1,1,1\nk-2,Tỉnh A,Huyện B,Xã C,Thôn 2,1,1\n"
        ),
    )
    interval = 0.5
    timeout = 3 * interval  # three missed heartbeats
    bus = MqttBus(*BROKER, topic_root=root)
    worker = IngestWorker(engine, bus.events, health=HealthMonitor(engine, heartbeat_timeout_s=timeout))
    worker.start()
    bus.start()
    proxy = FreezableProxy()
    await proxy.start()
    agents = []
    try:
        async with httpx.AsyncClient() as http:

            def agent(cluster_id: str, port: int) -> Agent:
                config = AgentConfig(
                    allow_unsigned_commands=True,
                    cluster_id=cluster_id,
                    data_dir=tmp_path / cluster_id,
                    topic_root=root,
                    mqtt_port=port,
                    heartbeat_interval_s=interval,
                    keepalive_s=60,
                )
                made = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id=cluster_id))
                agents.append(made)
                return made

            # 1. Killed without DISCONNECT: offline within the timeout plus a few seconds.
            first = agent("k-1", BROKER[1])
            await first.start()
            await _wait(lambda: _presence(engine, "k-1")[0], 10, "k-1 never showed online")
            await first.kill()
            await _wait(lambda: not _presence(engine, "k-1")[0], timeout + 5, "k-1 not offline in time")

            # 2. Silent death (link cut, no FIN, the broker's keepalive is 60 s): the heartbeat timeout finds it.
            silent = agent("k-2", proxy.port)
            await silent.start()
            await _wait(lambda: _presence(engine, "k-2")[0], 10, "k-2 never showed online")
            proxy.frozen = True
            await _wait(lambda: not _presence(engine, "k-2")[0], timeout + 5, "k-2 not offline in time")
            assert _presence(engine, "k-2") == (False, "heartbeat_timeout")

            # 3. It comes back on a new connection (seq 2); the old connection's will then arrives: ignored.
            await silent.kill()
            back = agent("k-2", BROKER[1])
            await back.start()
            await _wait(lambda: _presence(engine, "k-2")[0], 10, "k-2 not back online")
            stale = {"v": 1, "state": "offline", "seq": 1, "firmware": "bcast-agent/0.1.0"}
            publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"will-{uuid.uuid4().hex[:6]}")
            publisher.connect(*BROKER)
            publisher.loop_start()
            publisher.publish(
                Topics(root).for_cluster("k-2", Channel.STATUS), encode(Channel.STATUS, stale), qos=1
            ).wait_for_publish(5)
            publisher.loop_stop()
            publisher.disconnect()
            await _wait(lambda: worker.stats.stale_status >= 1, 10, "the stale will never reached ingest")
            await asyncio.sleep(3 * interval)  # a few heartbeats later it is still online
            assert _presence(engine, "k-2") == (True, None)
            await back.stop()
    finally:
        for made in agents:
            await made.kill()
        await proxy.close()
        bus.stop()
        worker.stop()
        cleanup = mqtt.Client(CallbackAPIVersion.VERSION2)
        cleanup.connect(*BROKER)
        for cluster_id in ("k-1", "k-2"):
            cleanup.publish(Topics(root).for_cluster(cluster_id, Channel.STATUS), b"", qos=1, retain=True)
        cleanup.disconnect()
