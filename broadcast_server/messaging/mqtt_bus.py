"""The server's MQTT connection: commands out (bounded queue, every return code checked), events in."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mqtt_contract import QOS, Channel, InvalidMessage, InvalidTopic, Topics, decode, encode

log = logging.getLogger(__name__)

MAX_QUEUED = 20_000  # measured: an unbounded paho queue silently lost messages past 65,535 in flight
MAX_INFLIGHT = 1_000


class BusError(RuntimeError):
    """The broker is unreachable or refused us."""


@dataclass(frozen=True)
class Incoming:
    """One valid message from a cluster, decoded and checked against its schema."""

    cluster_id: str
    channel: Channel
    message: dict[str, Any]
    received_at: float  # time.time()


class MqttBus:
    """One paho client on its own network thread; received events go to `events` for the ingest worker."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        topic_root: str = "bcast",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.topics = Topics(topic_root)
        self.host, self.port = host, port
        self.events: queue.Queue[Incoming] = queue.Queue()
        self.rejected = 0  # malformed payloads dropped (logged), never fatal
        self._connected = threading.Event()
        # A fixed client id with a persistent session: while the server is down or restarting, the broker
        # keeps the QoS 1 reports and statuses for it instead of dropping them (agents delete a report
        # from their outbox once the broker has it). Without an id, a throwaway clean session is used.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"bcast-server-{uuid.uuid4().hex[:8]}",
            clean_session=client_id is None,
            protocol=mqtt.MQTTv311,
        )
        self._client.max_queued_messages_set(MAX_QUEUED)
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BusError(f"cannot reach MQTT broker at {self.host}:{self.port}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise BusError(f"MQTT broker at {self.host}:{self.port} did not accept the connection")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the server: %s", reason_code)
            return
        for channel in (Channel.STATUS, Channel.HEARTBEAT, Channel.REPORT):
            client.subscribe(self.topics.wildcard(channel), qos=QOS[channel])
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        log.warning("MQTT connection lost (%s); paho reconnects", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            cluster_id, channel = self.topics.parse(msg.topic)
            if channel is Channel.COMMAND:
                return  # our own commands, if a broker echoes them
            if channel is Channel.STATUS and not msg.payload:
                return  # a cleared retained status
            message = decode(channel, msg.payload)
        except (InvalidTopic, InvalidMessage) as exc:
            self.rejected += 1
            log.warning("dropped message on %s: %s", msg.topic, exc)
            return
        self.events.put(Incoming(cluster_id, channel, message, time.time()))

    def publish_commands(self, commands: Iterable[tuple[str, dict[str, Any]]], *, timeout_s: float = 60.0) -> set[str]:
        """Publish (cluster_id, command) pairs at QoS 1; return the command ids the broker acknowledged.

        When paho's bounded queue is full, wait for room instead of dropping; give up at the deadline.
        """
        deadline = time.monotonic() + timeout_s
        pending: list[tuple[str, mqtt.MQTTMessageInfo]] = []
        for cluster_id, command in commands:
            payload = encode(Channel.COMMAND, command)
            topic = self.topics.for_cluster(cluster_id, Channel.COMMAND)
            while True:
                info = self._client.publish(topic, payload, qos=QOS[Channel.COMMAND])
                if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    # NO_CONN: paho keeps the QoS 1 message and sends it on reconnect.
                    pending.append((command["id"], info))
                    break
                if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE or time.monotonic() > deadline:
                    log.error("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
                    break
                time.sleep(0.005)
        acknowledged: set[str] = set()
        for command_id, info in pending:
            remaining = deadline - time.monotonic()
            if remaining > 0 and not info.is_published():
                try:
                    info.wait_for_publish(remaining)
                except (RuntimeError, ValueError):
                    continue
            if info.is_published():
                acknowledged.add(command_id)
        return acknowledged
