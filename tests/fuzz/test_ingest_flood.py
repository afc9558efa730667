"""Malformed MQTT payloads never stop ingest: a flood of hostile payloads mixed with valid ones, through Mosquitto.

The server's real `MqttBus` and `IngestWorker` on a broker of the test's own; a plain paho client plays
every cluster. Hostile payloads are of two kinds: those the codec must refuse (not JSON, nested too deep,
NaN, impossible dates, too large), and those that pass the schema but that the database cannot hold (a
connect counter past 64 bits, a NUL byte in a string for PostgreSQL). Every valid report must be stored,
and the worker must still be running and storing afterwards.
"""

from __future__ import annotations

import json
import random
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import select

from mqtt_contract import Channel, Topics

pytestmark = pytest.mark.timeout(240)

NOW = "2026-05-01T07:00:00.000Z"
VALID_REPORTS = 240
HOSTILE_RANDOM = 160


def _report(report_id: str, **extra) -> dict:
    return {"v": 1, "id": report_id, "ts": NOW, "command_id": f"cmd-{report_id}", "status": "pong", **extra}


def _heartbeat(seq: int, **extra) -> dict:
    return {"v": 1, "ts": NOW, "seq": seq, "uptime_s": 5.0, "firmware": "1.0", **extra}


def _hostile_fixed() -> list[tuple[Channel, bytes]]:
    """Payloads each known to have broken something, or to be worth trying."""
    return [
        (Channel.REPORT, b"[" * 50_000),
        (Channel.REPORT, b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        (Channel.HEARTBEAT, json.dumps(_heartbeat(1)).replace("5.0", "NaN").encode()),
        (Channel.HEARTBEAT, json.dumps(_heartbeat(1)).replace("5.0", "1e999").encode()),
        (Channel.REPORT, json.dumps(_report("bad-year", ts="0000-01-01T00:00:00Z")).encode()),
        (Channel.REPORT, json.dumps(_report("bad-day", started_at="9999-12-31T23:59:59-01:00")).encode()),
        (Channel.HEARTBEAT, json.dumps(_heartbeat(1)).replace('"seq": 1', '"seq": ' + "9" * 5000).encode()),
        (Channel.REPORT, b"\xff\xfe\xfd"),
        (Channel.REPORT, b""),
        (Channel.REPORT, b"x" * 70_000),
        (Channel.STATUS, b'{"v": 1, "state": "online", "seq": -1}'),
        # Valid by the schema, too large for a BIGINT column: refused by the database, alone.
        (Channel.HEARTBEAT, json.dumps(_heartbeat(2**70)).encode()),
        (Channel.STATUS, json.dumps({"v": 1, "state": "online", "seq": 2**64, "ts": NOW}).encode()),
        # Valid by the schema; PostgreSQL refuses NUL in text, SQLite keeps it.
        (Channel.REPORT, json.dumps(_report("nul-1", reason="a\u0000b")).encode()),
    ]


def _hostile_random(rng: random.Random) -> list[tuple[Channel, bytes]]:
    """Valid reports with bytes flipped, inserted or dropped (seeded: the same flood every run)."""
    out = []
    for n in range(HOSTILE_RANDOM):
        raw = bytearray(json.dumps(_report(f"m-{n}")).encode())
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(raw))
            if rng.random() < 0.5:
                raw[at] = rng.randrange(256)
            else:
                del raw[at]
        out.append((Channel.REPORT, bytes(raw)))
    return out


def _stored_report_ids(engine) -> set[str]:
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import PlaybackReport

    with session_scope(engine) as session:
        return set(session.exec(select(PlaybackReport.id)).all())


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_flood_of_malformed_payloads_does_not_stop_ingest(world, fuzz_broker) -> None:
    from broadcast_server.messaging.mqtt_bus import MqttBus
    from broadcast_server.services.ingest import IngestWorker

    engine = world.runtime.engine
    topics = Topics(world.runtime.settings.topic_root)
    bus = MqttBus("127.0.0.1", fuzz_broker.port, topic_root=topics.root)
    worker = IngestWorker(engine, bus.events, batch_size=50, default_health=False, acknowledge=bus.acknowledge)
    worker.start()
    bus.start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{topics.root}")
    publisher.connect("127.0.0.1", fuzz_broker.port)
    publisher.loop_start()
    rng = random.Random(8)
    clusters = world.cluster_ids
    try:
        valid = [(Channel.REPORT, f"ok-{n}", json.dumps(_report(f"ok-{n}")).encode()) for n in range(VALID_REPORTS)]
        valid += [(Channel.HEARTBEAT, None, json.dumps(_heartbeat(1)).encode()) for _ in range(20)]
        hostile = [(channel, None, payload) for channel, payload in _hostile_fixed() + _hostile_random(rng)]
        flood = valid + hostile
        rng.shuffle(flood)
        infos = []
        for channel, _, payload in flood:
            topic = topics.for_cluster(rng.choice(clusters), channel)
            infos.append(publisher.publish(topic, payload, qos=1))
        # Topics no cluster may use: refused by the topic parser, not by the payload's.
        infos.append(publisher.publish(f"{topics.root}/v1/clusters/../../etc/report", b"{}", qos=1))
        infos.append(publisher.publish(f"{topics.root}/v1/clusters/{'x' * 300}/report", b"{}", qos=1))
        for info in infos:
            info.wait_for_publish(30)

        expected = {report_id for _, report_id, _ in valid if report_id}
        assert _wait_for(lambda: expected <= _stored_report_ids(engine), 90), (
            # Enough to tell where one went (it failed once under a loaded fresh-clone run, 2026-12-07):
            # which ids, what ingest counted, what the bus refused and still holds.
            f"{len(expected - _stored_report_ids(engine))} valid reports never stored: "
            f"{sorted(expected - _stored_report_ids(engine))[:10]}; ingest {worker.stats}; "
            f"bus rejected {bus.rejected}, buffered {bus.events.qsize()}"
        )
        assert worker._thread.is_alive(), "the ingest worker died"
        assert bus.rejected >= 10, bus.rejected  # the codec refused the unparseable ones
        assert _wait_for(lambda: worker.stats.refused_messages >= 2, 30), worker.stats  # the BIGINT overflows

        # Still storing after the flood.
        publisher.publish(topics.for_cluster(clusters[0], Channel.REPORT), json.dumps(_report("after")).encode(), qos=1)
        assert _wait_for(lambda: "after" in _stored_report_ids(engine), 30)
        assert worker._thread.is_alive()
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        bus.stop()
        worker.stop()


def test_one_refused_message_does_not_hold_back_its_batch(world) -> None:
    """store_batch on a batch with a poison message fails as a whole; the worker stores the rest of it."""
    import queue

    from broadcast_server.messaging.mqtt_bus import Incoming
    from broadcast_server.services.ingest import IngestWorker

    engine = world.runtime.engine
    cluster = world.cluster_ids[0]
    events: queue.Queue[Incoming] = queue.Queue()
    items = [Incoming(cluster, Channel.REPORT, _report(f"b-{n}"), time.time()) for n in range(9)]
    items.insert(4, Incoming(cluster, Channel.HEARTBEAT, _heartbeat(2**70), time.time()))
    for item in items:
        events.put(item)
    worker = IngestWorker(engine, events, batch_size=100, max_wait_s=0.5, default_health=False)
    worker.start()
    try:
        assert worker.wait_idle(60)
        assert {f"b-{n}" for n in range(9)} <= _stored_report_ids(engine)
        assert worker.stats.refused_messages == 1
        assert worker.stats.stored_reports == 9  # counted once: the failed attempts count nothing
        assert worker._thread.is_alive()
    finally:
        worker.stop()
