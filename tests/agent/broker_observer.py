"""A watcher of the real broker for agent tests: publishes commands, keeps every message under a topic root."""

from __future__ import annotations

import asyncio
import json
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_contract import Channel, Topics

BROKER = ("127.0.0.1", 1883)


class Observer:
    """A plain paho client (thread loop) that records (topic, payload, retained) of every message under a root."""

    def __init__(self, topic_root: str) -> None:
        self.topics = Topics(topic_root)
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect(*BROKER)
        self.client.subscribe(f"{topic_root}/#", qos=1)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def send(self, cluster_id: str, command: dict | bytes) -> None:
        """A command (a dict as JSON, or raw bytes for malformed ones) on the cluster's command topic."""
        payload = command if isinstance(command, bytes) else json.dumps(command).encode()
        self.publish(self.topics.for_cluster(cluster_id, Channel.COMMAND), payload)

    def of(self, channel: Channel) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.messages if t.endswith("/" + channel.value) and p]

    def reports(self) -> list[dict]:
        return self.of(Channel.REPORT)

    def report_for(self, command_id: str) -> dict | None:
        return next((r for r in self.reports() if r["command_id"] == command_id), None)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` on the running loop until it holds; AssertionError naming `what` after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        await asyncio.sleep(0.02)
