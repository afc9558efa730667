"""The MQTT contract on two brokers: Mosquitto and NATS (a clusterable broker) with its MQTT listener.

Each test runs once per broker (the `mqtt_broker` fixture): the demo's whole path, and the session
guarantees the agent relies on (retained status, last will, commands queued for an offline cluster).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bcast.demo import run_demo
from mqtt_contract import Channel, InvalidTopic, Topics, decode
from speaker_agent import Agent, AgentConfig
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer

pytestmark = [pytest.mark.broker]


class Recorder:
    """A plain paho client (MQTT 3.1.1, thread loop) keeping (topic, payload, retain) of what it receives."""

    def __init__(self, broker, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv311
        )
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.on_subscribe = lambda c, u, mid, rc, p: setattr(self, "subscribed", True)
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()

    def of(self, channel: Channel) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.messages if t.endswith("/" + channel.value) and p]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.slow
def test_demo_plays_on_every_cluster_and_speaks_only_the_contract(mqtt_broker, tmp_path):
    """Issue 9, acceptance 3: the demo (server, 202 simulated clusters, one bulletin) on each broker."""
    tap = Recorder(mqtt_broker, "#")
    try:
        result = run_demo(broker=mqtt_broker, timeout_s=120)
    finally:
        tap.close()
    assert result.broker == mqtt_broker.kind
    assert result.clusters == 202
    assert all(c["played"] == c["clusters"] for c in result.communes), result.communes
    truth = result.extra["ground_truth"]
    assert truth["clusters_played"] == 202 and truth["plays_completed"] == 202
    assert truth["played_bad_hash"] == 0 and truth["reports_unsent"] == 0
    # Every message the broker carried is on a contract topic and valid against its schema.
    topics = Topics("bcast")
    channels: dict[str, int] = {}
    # MQTT 3.1.1 section 4.7.2: '#' must not match topics that start with '$'. NATS 2.9 breaks this rule
    # and delivers its own JetStream API subjects ($JS/API/...) to a '#' subscriber: they are not ours.
    broker_internal = [t for t, _, _ in tap.messages if t.startswith("$")]
    assert not broker_internal or mqtt_broker.kind == "nats", broker_internal[:3]
    for topic, payload, _ in tap.messages:
        if topic.startswith("$"):
            continue
        try:
            _, channel = topics.parse(topic)
        except InvalidTopic as exc:
            pytest.fail(f"message outside the contract on {mqtt_broker.kind}: {exc}")
        if payload:
            decode(channel, payload)
        channels[channel.value] = channels.get(channel.value, 0) + 1
    assert set(channels) == {"command", "status", "heartbeat", "report"}
    assert channels["command"] >= 202 and channels["report"] >= 202


def ping(cluster_id: str) -> dict:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": f"ping-{uuid.uuid4().hex[:12]}",
        "type": "ping",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=5)),
    }


async def test_will_retained_status_and_commands_queued_while_offline(mqtt_broker, tmp_path):
    """What the agent relies on: its will on power loss, its retained status, its persistent session."""
    root = f"t{uuid.uuid4().hex[:10]}"
    topics = Topics(root)
    observer = Recorder(mqtt_broker, f"{root}/#")
    config = AgentConfig(
        allow_unsigned_commands=True,
        cluster_id="c-1",
        data_dir=tmp_path / "agent",
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        topic_root=root,
        keepalive_s=5,
    )
    try:
        await until(lambda: observer.subscribed)
        async with httpx.AsyncClient() as http:
            agent = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-1"))
            await agent.start()
            await asyncio.wait_for(agent.subscribed.wait(), 15)
            await until(lambda: [s["state"] for s in observer.of(Channel.STATUS)] == ["online"])
            await agent.kill()  # power loss: no DISCONNECT, so the broker publishes the will
            await until(lambda: observer.of(Channel.STATUS)[-1]["state"] == "offline")
            assert observer.of(Channel.STATUS)[-1]["seq"] == 1 and "ts" not in observer.of(Channel.STATUS)[-1]

            # A command sent while the cluster is off waits in its session at the broker.
            command = ping("c-1")
            sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
            sender.connect(mqtt_broker.host, mqtt_broker.port)
            sender.loop_start()
            sender.publish(topics.for_cluster("c-1", Channel.COMMAND), json.dumps(command), qos=1).wait_for_publish(10)
            sender.loop_stop()
            sender.disconnect()

            again = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-1"))
            await again.start()
            await until(lambda: any(r["command_id"] == command["id"] for r in observer.of(Channel.REPORT)))
            report = next(r for r in observer.of(Channel.REPORT) if r["command_id"] == command["id"])
            assert report["status"] == "pong"
            assert observer.of(Channel.STATUS)[-1] == {**observer.of(Channel.STATUS)[-1], "state": "online", "seq": 2}
            await again.stop()
            await until(lambda: observer.of(Channel.STATUS)[-1]["state"] == "offline")

        # The last status is retained: a newcomer gets it at once, flagged as retained.
        late = Recorder(mqtt_broker, topics.for_cluster("c-1", Channel.STATUS))
        try:
            await until(lambda: late.messages)
            topic, payload, retained = late.messages[0]
            assert retained and json.loads(payload)["state"] == "offline" and json.loads(payload)["seq"] == 2
        finally:
            late.close()
    finally:
        observer.close()


def test_qos_2_completes_on_mosquitto_and_drops_the_client_on_nats(mqtt_broker):
    """A documented difference: NATS 2.9 closes the connection of a QoS 2 publisher (the contract uses 0 and 1)."""
    dropped = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_disconnect = lambda c, u, f, rc, p: dropped.set()
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.loop_start()
    try:
        info = client.publish("bcast/c-1/command", b"{}", qos=2)
        if mqtt_broker.kind == "nats":
            assert dropped.wait(15)
            assert not info.is_published()
        else:
            info.wait_for_publish(10)
            assert info.is_published() and not dropped.is_set()
    finally:
        client.loop_stop()
        client.disconnect()
