"""The server's bus is ready only once the broker has granted its subscriptions.

On a fresh session a report published between CONNACK and SUBACK finds no subscriber and the broker drops
it; `MqttBus.start()` therefore waits for every SUBACK. A scripted broker on loopback decides when (or
whether) the SUBACK comes, which no real broker lets a test choose.
"""

from __future__ import annotations

import socket
import threading

import pytest

from broadcast_server.messaging.mqtt_bus import BusError, MqttBus

CONNACK = b"\x20\x02\x00\x00"


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """One MQTT control packet: (first byte, body)."""
    head = conn.recv(1)
    if not head:
        raise ConnectionError("closed")
    length, shift = 0, 0
    while True:
        digit = conn.recv(1)[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return head[0], body


class ScriptedBroker:
    """Accepts one client, answers CONNECT; answers each SUBSCRIBE only once `release` is set (never, if not)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.release = threading.Event()
        self.subscribes = 0
        self.granted = threading.Event()  # set just before the last SUBACK is written
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        held: list[bytes] = []
        try:
            while not self.closed.is_set():
                kind, body = _read_packet(conn)
                if kind >> 4 == 1:  # CONNECT
                    conn.sendall(CONNACK)
                elif kind >> 4 == 8:  # SUBSCRIBE: packet id, then (filter, qos) pairs; one filter each here
                    self.subscribes += 1
                    held.append(b"\x90\x03" + body[:2] + bytes([body[-1]]))
                    if self.subscribes == 3 and self.release.wait(30):
                        self.granted.set()
                        conn.sendall(b"".join(held))
                elif kind >> 4 == 12:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
                elif kind >> 4 == 14:  # DISCONNECT
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.release.set()
        self.server.close()


@pytest.fixture
def scripted_broker():
    broker = ScriptedBroker()
    yield broker
    broker.close()


def test_start_returns_only_after_the_broker_granted_every_subscription(scripted_broker) -> None:
    bus = MqttBus("127.0.0.1", scripted_broker.port, topic_root="t")
    threading.Timer(0.3, scripted_broker.release.set).start()
    try:
        bus.start(timeout_s=20)
        assert scripted_broker.granted.is_set() and scripted_broker.subscribes == 3
    finally:
        bus.stop()


def test_a_broker_that_never_grants_the_subscriptions_fails_the_start(scripted_broker) -> None:
    bus = MqttBus("127.0.0.1", scripted_broker.port, topic_root="t")
    with pytest.raises(BusError, match="did not grant the subscriptions"):
        bus.start(timeout_s=1.0)
    assert scripted_broker.subscribes == 3 and not scripted_broker.granted.is_set()
