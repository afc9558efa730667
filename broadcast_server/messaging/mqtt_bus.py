"""The server's MQTT connection: commands out (bounded queue, every return code checked), events in."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mqtt_contract import QOS, Channel, InvalidMessage, InvalidTopic, Topics, decode, encode
from speaker_agent.mqtt_loop import MqttTls, secure_client

if TYPE_CHECKING:
    from broadcast_server.settings import Settings
    from broadcast_server.signing.command_signer import ServerCommandSigner

log = logging.getLogger(__name__)

MAX_QUEUED = 20_000  # measured: an unbounded paho queue silently lost messages past 65,535 in flight
# No in-flight window of our own (0 = unlimited; MAX_QUEUED still bounds what is outstanding): with one,
# paho walks the window at every PUBACK to find the next queued message, which costs most when a dispatch
# runs late (bench/publish_window.py). The broker acknowledges QoS 1 at once anyway.
MAX_INFLIGHT = 0
# Messages held for the ingest worker while the database is away (~1 kB each). When full, heartbeats are
# dropped (the next one says the same) and paho's thread waits for room for the rest: the broker then keeps
# them in this client's persistent session (mosquitto: up to max_queued_messages) instead of us losing them.
MAX_BUFFERED = 50_000


class BusError(RuntimeError):
    """The broker is unreachable or refused us."""


@dataclass(frozen=True)
class Incoming:
    """One valid message from a cluster, decoded and checked against its schema."""

    cluster_id: str
    channel: Channel
    message: dict[str, Any]
    received_at: float  # time.time()
    mid: int = 0  # the MQTT packet id to acknowledge once stored (0: nothing to acknowledge)


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
        tls: MqttTls | None = None,
        signer: ServerCommandSigner | None = None,
        max_buffered: int = MAX_BUFFERED,
        shared_group: str | None = None,
    ) -> None:
        self.topics = Topics(topic_root)
        self.shared_group = shared_group  # replicas split the ingest: $share/<group>/<topic>
        self.signer = signer  # signs every command published (docs/security.md); None only in tests
        self.host, self.port = host, port
        self.events: queue.Queue[Incoming] = queue.Queue(maxsize=max_buffered)
        self.rejected = 0  # malformed payloads dropped (logged), never fatal
        self.dropped_heartbeats = 0  # heartbeats that found the buffer full
        self._stopping = threading.Event()
        self._connected = threading.Event()
        # Set once the broker has acknowledged every subscription of the current connection: before that,
        # a report published on a fresh session would find no subscriber and be dropped by the broker.
        self._subscribed = threading.Event()
        self._pending_subscriptions: set[int] = set()
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
        # A QoS 1 message is acknowledged to the broker only once the ingest worker has stored it: a server
        # killed with messages in its buffer gets them again from its persistent session when it is back.
        self._client.manual_ack_set(True)
        secure_client(self._client, username=username, password=password, tls=tls)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    @classmethod
    def from_settings(cls, settings: Settings) -> MqttBus:
        """The server's bus as configured: broker, account, topic root, persistent client id, TLS, signing key."""
        from broadcast_server.signing.command_signer import ServerCommandSigner

        tls = None
        if settings.mqtt_tls or settings.mqtt_tls_ca_file or settings.mqtt_tls_cert_file:
            tls = MqttTls(
                settings.mqtt_tls_ca_file,
                settings.mqtt_tls_cert_file,
                settings.mqtt_tls_key_file,
                settings.mqtt_tls_check_hostname,
            )
        return cls(
            settings.mqtt_host,
            settings.mqtt_port,
            topic_root=settings.topic_root,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            client_id=settings.mqtt_client_id,
            shared_group=settings.mqtt_shared_group,
            tls=tls,
            signer=ServerCommandSigner(settings.signing_key_file),
        )

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BusError(f"cannot reach MQTT broker at {self.host}:{self.port}: {exc}") from None
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise BusError(f"MQTT broker at {self.host}:{self.port} did not accept the connection")
        if not self._subscribed.wait(max(0.0, deadline - time.monotonic())):
            self._client.disconnect()
            self._client.loop_stop()
            raise BusError(
                f"MQTT broker at {self.host}:{self.port} did not grant the subscriptions to status, heartbeat "
                "and report topics (check the server account's ACL)"
            )

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the server: %s", reason_code)
            return
        prefix = f"$share/{self.shared_group}/" if self.shared_group else ""
        self._subscribed.clear()
        pending = set()
        for channel in (Channel.STATUS, Channel.HEARTBEAT, Channel.REPORT):
            _, mid = client.subscribe(prefix + self.topics.wildcard(channel), qos=QOS[channel])
            pending.add(mid)
        self._pending_subscriptions = pending  # SUBACKs are handled on this same thread, after this returns
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("MQTT broker refused a subscription of the server (mid %s): %s", mid, codes)
            return
        self._pending_subscriptions.discard(mid)
        if not self._pending_subscriptions:
            self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        log.warning("MQTT connection lost (%s); paho reconnects", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        mid = msg.mid if msg.qos > 0 else 0
        try:
            cluster_id, channel = self.topics.parse(msg.topic)
            if channel is Channel.COMMAND or (channel is Channel.STATUS and not msg.payload):
                self.acknowledge([mid])  # our own commands echoed, or a cleared retained status: nothing to store
                return
            message = decode(channel, msg.payload)
        except (InvalidTopic, InvalidMessage) as exc:
            self.rejected += 1
            log.warning("dropped message on %s: %s", msg.topic, exc)
            self.acknowledge([mid])  # never stored, so never redelivered either
            return
        self._buffer(Incoming(cluster_id, channel, message, time.time(), mid))

    def acknowledge(self, mids: Iterable[int]) -> None:
        """Tell the broker these messages are stored (or dropped on purpose); thread-safe, called by ingest."""
        for mid in mids:
            if mid:
                self._client.ack(mid, 1)

    def _buffer(self, item: Incoming) -> None:
        """Queue for ingest; with the buffer full drop a heartbeat, and hold anything else until there is room."""
        if item.channel is Channel.HEARTBEAT:
            try:
                self.events.put_nowait(item)
            except queue.Full:
                self.dropped_heartbeats += 1
                self.acknowledge([item.mid])  # the next heartbeat says the same
            return
        while not self._stopping.is_set():
            try:
                self.events.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        log.error("stopping with the ingest buffer full: %s of %s not stored", item.channel.value, item.cluster_id)

    def publish_commands(self, commands: Iterable[tuple[str, dict[str, Any]]], *, timeout_s: float = 60.0) -> set[str]:
        """Publish (cluster_id, command) pairs at QoS 1; return the command ids the broker acknowledged.

        When paho's bounded queue is full, wait for room instead of dropping; give up at the deadline.
        """
        deadline = time.monotonic() + timeout_s
        pending: list[tuple[str, mqtt.MQTTMessageInfo]] = []
        signer = self.signer
        keyring = signer.keyring if signer is not None else None  # the key file looked at once a batch
        for cluster_id, command in commands:
            payload = encode(Channel.COMMAND, signer.sign(command, keyring) if signer is not None else command)
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
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                while not _sent_after_reconnect(info) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if _sent_after_reconnect(info):
                    acknowledged.add(command_id)
                continue
            remaining = deadline - time.monotonic()
            if remaining > 0 and not info.is_published():
                try:
                    info.wait_for_publish(remaining)
                except (RuntimeError, ValueError):
                    continue
            if info.is_published():
                acknowledged.add(command_id)
        return acknowledged


def _sent_after_reconnect(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether a message queued while disconnected was acknowledged after the reconnect.

    paho sends it then and marks it published, but its `is_published()` raises for the NO_CONN code it kept."""
    return bool(info._published)  # noqa: SLF001 (paho 2 has no public check for this case)
