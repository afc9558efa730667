"""Small MQTT helpers of the benchmarks: prove a subscriber is listening, read a broker's $SYS counter."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class ProbeTimeout(RuntimeError):
    """The subscriber never saw the probe: it is not listening."""


def _client(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{uuid.uuid4().hex[:8]}")
    client.connect(host, port, keepalive=30)
    client.loop_start()
    return client


def probe_until(
    heard: Callable[[], bool], host: str, port: int, topic: str, payload: bytes, timeout_s: float = 30.0
) -> int:
    """Publish `payload` on `topic` (QoS 0) every 0.1 s until `heard()`; return how many were sent."""
    client = _client(host, port)
    sent = 0
    try:
        deadline = time.monotonic() + timeout_s
        while not heard():
            if time.monotonic() > deadline:
                raise ProbeTimeout(f"no subscriber heard {topic} in {timeout_s:.0f} s")
            client.publish(topic, payload, qos=0)
            sent += 1
            time.sleep(0.1)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def sys_counter(host: str, port: int, topic: str, timeout_s: float = 5.0) -> int | None:
    """The current value of a retained $SYS counter of mosquitto (None if it does not publish it)."""
    value: list[int] = []
    got = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            value.append(int(float(message.payload.decode())))
        except ValueError:
            return
        got.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sys-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic)
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        got.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return value[0] if value else None
