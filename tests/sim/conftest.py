"""Fixtures for simulator tests: a mosquitto of our own (restartable) and a wiretap on the report topics."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bcast.broker import LocalBroker

# mosquitto logs each connection to stderr, which LocalBroker pipes and never reads: without this a few
# hundred connections fill the pipe and the broker stops.
BROKER_CONFIG = "log_dest none\nmax_connections -1"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(extra_config=BROKER_CONFIG) as running:
        if running.kind != "mosquitto":
            pytest.skip("these tests need mosquitto")
        yield running


@pytest.fixture
def topic_root() -> str:
    return f"s{uuid.uuid4().hex[:12]}"


class Wiretap:
    """A plain paho client (its own thread) that keeps every report published under a topic root."""

    def __init__(self, host: str, port: int, topic_root: str) -> None:
        self.reports: list[dict] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(host, port)
        self.client.subscribe(f"{topic_root}/v1/clusters/+/report", qos=1)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("wiretap not subscribed")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.reports.append(json.loads(message.payload))

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.reports)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def wiretap(broker: LocalBroker, topic_root: str) -> Iterator[Wiretap]:
    tap = Wiretap(broker.host, broker.port, topic_root)
    yield tap
    tap.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until `predicate()` holds; a bounded wait, never an assertion on how long it took."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Callable[..., object]:
    """The bounded polling helper, as a fixture (test modules cannot import conftest in importlib mode)."""
    return wait_until
