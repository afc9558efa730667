"""Ingest: heartbeats and reports stored per second with zero loss, against mosquitto_sub on the same stream.

Run: .venv/bin/python -m bench.ingest [--messages 100000] [--clusters 2000] [--database sqlite|postgres]
     [--replicas N] [--zero-loss-rounds 6] [--round-s 8]

One mosquitto (bcast.broker.LocalBroker, without a per-client queue cap, see BROKER_CONFIG) serves the
phases, each fed a stream by `--publishers` processes of `--clients` MQTT connections each, writing
pre-encoded packets, from `--clusters` cluster ids: 4 heartbeats (QoS 0) for each report (QoS 1), every
message valid against the contract.
- baseline: `mosquitto_sub` (the C client) subscribed to the heartbeat and report topics receives the
  stream sent as fast as the sockets take it; rate = messages it printed / (last message's timestamp -
  the moment the publishers were told to go). This is the broker's own limit on this machine.
- paho reference: the same burst received by a bare paho client (QoS 1, a callback that only counts) in a
  process of its own: what the MQTT library alone allows a Python subscriber, for reading the figures.
- server: `--replicas` server processes (default 1), each the real `Runtime` as `bcast server` starts it
  (`MqttBus`, `IngestWorker` with the fleet-health monitor, schedule pusher, dispatch sweeper), storing
  into a fresh database (SQLite by default, PostgreSQL with `--database postgres`) that holds the fleet;
  with more than one, an MQTT shared subscription splits the stream between them, as replicas of a
  deployment do. First the same burst: rate = rows stored / (moment the last replica had stored its
  buffer - go), loss = messages published - rows (`heartbeat` + `playback_report`); a server whose buffer
  fills drops heartbeats on purpose (docs/architecture.md), which counts as loss here. Then steady rounds
  (`--zero-loss-rounds`, `--round-s` seconds of fresh messages each, paced by the publishers): the rate is
  raised 1.5x while a round is stored whole and storing ends within a second of publishing, then the gap
  between the last good and the first bad rate is halved; the highest good rate is the zero-loss rate.
Each subscriber is proven listening with a probe message before the publishers go. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.child_process import Child, emit  # noqa: E402

TOPIC_ROOT = "bcast"
REPORT_EVERY = 5  # one message in five is a report, the others heartbeats
PROBE_CLUSTER = "bench-probe"  # not in the fleet: the server drops its messages and counts them as unknown
DEFAULT_PUBLISHERS = 2
# No per-client queue cap: the publishers offer more than any subscriber takes, so the broker must buffer
# the burst; with the production cap (10,000, docker/mosquitto.conf) it drops what overflows, QoS 0 and 1
# alike, and the loss would be the broker's, not the subscriber's. $SYS every second counts drops anyway.
BROKER_CONFIG = "max_queued_messages 0\nsys_interval 1"
DEFAULT_CLIENTS = 25  # connections per publisher process


def message(i: int, cluster_ids: list[str], now: str) -> tuple[str, bytes, int]:
    """Message number `i` of the stream: (topic, payload, QoS), checked against the contract."""
    from mqtt_contract import QOS, Channel, Topics, encode

    cluster_id = cluster_ids[i % len(cluster_ids)]
    if i % REPORT_EVERY == REPORT_EVERY - 1:
        channel = Channel.REPORT
        body: dict[str, Any] = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "ts": now,
            "command_id": uuid.uuid4().hex,
            "status": "played",
            "started_at": now,
            "ended_at": now,
            "played_s": 90.0,
            "late_s": 0.0,
        }
    else:
        channel = Channel.HEARTBEAT
        body = {
            "v": 1,
            "ts": now,
            "seq": 1,
            "uptime_s": float(i),
            "firmware": "bcast-agent/0.1.0",
            "volume": 80,
            "amplifier": "on",
            "playing": None,
            "cache_free_bytes": 1_000_000_000,
            "link_rssi_dbm": None,
            "clock_offset_s": None,
            "last_error": None,
        }
    return Topics(TOPIC_ROOT).for_cluster(cluster_id, channel), encode(channel, body), QOS[channel]


def probe_payload() -> bytes:
    """A valid heartbeat of a cluster no fleet holds."""
    from mqtt_contract.times import isoformat

    return message(0, [PROBE_CLUSTER], isoformat(datetime.now(UTC)))[1]


# ----------------------------------------------------------------------------------------- publisher


def _packet(kind: int, body: bytes) -> bytes:
    """An MQTT 3.1.1 control packet: type and flags, remaining length (variable-length integer), body."""
    length, size = bytearray(), len(body)
    while True:
        size, digit = divmod(size, 128)
        length.append(digit | (0x80 if size else 0))
        if not size:
            return bytes([kind]) + bytes(length) + body


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


class RawPublisher:
    """One MQTT 3.1.1 connection that writes pre-encoded PUBLISH packets as fast as the socket takes them.

    paho in Python tops out near 20,000 messages/s per process here, under the broker's limit; writing the
    packets ourselves lets a few processes offer more than the broker can pass. QoS 1 messages carry
    packet ids and are counted acknowledged from the broker's PUBACKs; a PINGREQ after the stream is
    answered only once the broker has handled every packet before it (one connection is handled in order).
    """

    def __init__(self, port: int, client_id: str) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port))
        # Keepalive 0: the connection idles between the phases without pings.
        self.sock.sendall(_packet(0x10, _string("MQTT") + bytes([4, 0x02, 0, 0]) + _string(client_id)))
        if self._read(4)[:1] != b"\x20":
            raise SystemExit("publisher: broker refused the connection")
        self.packets: list[bytes] = []
        self.qos1 = 0

    def reset(self) -> None:
        self.packets, self.qos1 = [], 0

    def add(self, topic: str, payload: bytes, qos: int) -> None:
        packet_id = b""
        if qos:
            self.qos1 += 1
            packet_id = (self.qos1 % 65535 + 1).to_bytes(2, "big")
        self.packets.append(_packet(0x30 | qos << 1, _string(topic) + packet_id + payload))

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def send_all(self, result: list[int], rate: float = 0.0, start: float = 0.0) -> None:
        """Write the stream and a PINGREQ; read until PINGRESP; append the PUBACKs counted to `result`.

        With `rate` (messages/s on this connection) the packets go out at that pace from `start`
        (time.monotonic()), in slices every few milliseconds; without it, all at once.
        """
        if not rate:
            self.sock.sendall(b"".join(self.packets))
        else:
            sent = 0
            while sent < len(self.packets):
                due = min(len(self.packets), int((time.monotonic() - start) * rate) + 1)
                if due > sent:
                    self.sock.sendall(b"".join(self.packets[sent:due]))
                    sent = due
                else:
                    time.sleep(min(0.01, (sent + 1) / rate - (time.monotonic() - start)))
        self.sock.sendall(b"\xc0\x00")
        acks = 0
        while True:
            head = self._read(2)
            if head == b"\xd0\x00":
                break
            body = self._read(head[1])
            if head[0] == 0x40 and len(body) == 2:
                acks += 1
        result.append(acks)


def publisher(port: int, index: int, procs: int, clients: int, clusters: int) -> None:
    """Child: connect `clients` raw connections; per `build N`, make its share of a fresh N-message stream
    (new report ids: a stream sent twice would be duplicates); per `go RATE`, publish it (RATE messages/s
    for this process, 0 for as fast as the sockets take them)."""
    from bench.synthetic_fleet import cluster_ids
    from mqtt_contract.times import isoformat

    ids = cluster_ids(clusters, "ing")
    pool = [RawPublisher(port, f"bench-pub-{index}-{c}-{uuid.uuid4().hex[:6]}") for c in range(clients)]
    mine: range = range(0)
    emit({"connected": True})
    for line in sys.stdin:
        order, _, argument = line.strip().partition(" ")
        if order == "build":
            now = isoformat(datetime.now(UTC))
            mine = range(index, int(argument), procs)
            for p in pool:
                p.reset()
            for j, i in enumerate(mine):
                pool[j % clients].add(*message(i, ids, now))
            emit({"ready": True, "messages": len(mine)})
        elif order == "go":
            rate = float(argument) / clients
            expected_acks = sum(p.qos1 for p in pool)
            acks: list[int] = []
            start = time.monotonic()
            threads = [threading.Thread(target=p.send_all, args=(acks, rate, start)) for p in pool]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(600)
            # Every QoS 0 message was handled before its connection's PINGRESP; QoS 1 ones are counted by PUBACK.
            published = len(mine) - expected_acks + sum(acks) if len(acks) == len(pool) else 0
            emit({"published": published, "done_at": time.time()})
        else:
            break
    for p in pool:
        p.sock.sendall(b"\xe0\x00")  # DISCONNECT
        p.sock.close()


class Publishers:
    """The publisher processes: started and connected once; each phase builds a stream, then publishes it."""

    def __init__(self, port: int, procs: int, clients: int, clusters: int) -> None:
        self.children = [
            Child("bench.ingest", "--publisher", *map(str, (port, i, procs, clients, clusters))) for i in range(procs)
        ]
        self.total = 0
        for child in self.children:
            child.read_json(180)

    def build(self, messages: int) -> None:
        """A fresh stream of `messages` messages, split between the processes (not timed)."""
        for child in self.children:
            child.send(f"build {messages}")
        for child in self.children:
            child.read_json(300)
        self.total = messages

    def go(self, rate: float = 0.0) -> float:
        """Publish the stream built, at `rate` messages/s in all (0: flat out); returns when it started."""
        started = time.time()
        for child in self.children:
            child.send(f"go {rate / len(self.children)}")
        return started

    def finished(self, timeout_s: float = 600) -> tuple[int, float]:
        """(messages published, when the last publisher finished)."""
        answers = [child.read_json(timeout_s) for child in self.children]
        return sum(a["published"] for a in answers), max(a["done_at"] for a in answers)

    def close(self) -> None:
        for child in self.children:
            child.close()


# ----------------------------------------------------------------------------------------- phases


def baseline(host: str, port: int, publishers: Publishers, timeout_s: float) -> dict[str, Any]:
    """mosquitto_sub receives the stream; its own per-message timestamps say when the last one came."""
    from mqtt_contract import Channel, Topics

    topics = Topics(TOPIC_ROOT)
    with tempfile.NamedTemporaryFile(prefix="bench-sub-", suffix=".txt") as out:
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", host, "-p", str(port), "-q", "1", "-F", "%U %t"]
            + ["-t", topics.wildcard(Channel.HEARTBEAT), "-t", topics.wildcard(Channel.REPORT)],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        try:
            reader = open(out.name, "rb")  # noqa: SIM115 - read while mosquitto_sub writes
            seen = {"probe": 0, "stream": 0, "last": 0.0}
            tail = b""

            def drain() -> None:
                nonlocal tail
                data = tail + reader.read()
                lines = data.split(b"\n")
                tail = lines.pop()
                for line in lines:
                    stamp, _, topic = line.partition(b" ")
                    if PROBE_CLUSTER.encode() in topic:
                        seen["probe"] += 1
                    else:
                        seen["stream"] += 1
                        seen["last"] = float(stamp)

            from bench.mqtt_probe import probe_until

            probe_until(
                lambda: drain() or seen["probe"] > 0,
                host,
                port,
                topics.for_cluster(PROBE_CLUSTER, Channel.HEARTBEAT),
                probe_payload(),
            )
            go = publishers.go()
            published, published_at = wait_for(lambda: (drain(), seen["stream"])[1], publishers, timeout_s)
            drain()
            reader.close()
        finally:
            sub.terminate()
            sub.wait(10)
    received = seen["stream"]
    seconds = max(1e-6, seen["last"] - go) if received else None
    return {
        "published": published,
        "publish_s": round(published_at - go, 3),
        "received": received,
        "seconds": round(seconds, 3) if seconds else None,
        "msgs_per_s": round(received / seconds) if seconds else 0,
        "lost": published - received,
    }


def paho_subscriber(host: str, port: int) -> None:
    """Child: a bare paho client (QoS 1 subscription, callback that only counts), the library's own ceiling.

    Orders: `count` (stream messages so far, probes seen, when the last stream message came).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from mqtt_contract import Channel, Topics

    topics = Topics(TOPIC_ROOT)
    seen = {"stream": 0, "probes": 0, "last": 0.0}
    probe = PROBE_CLUSTER.encode()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if probe in msg._topic:  # noqa: SLF001 - the raw bytes: decoding the topic is the callback's choice
            seen["probes"] += 1
        else:
            seen["stream"] += 1
            seen["last"] = time.time()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(1_000)
    client.on_connect = lambda c, u, f, rc, p: [
        c.subscribe(topics.wildcard(ch), qos=1) for ch in (Channel.HEARTBEAT, Channel.REPORT)
    ]
    client.on_message = on_message
    client.connect(host, port, keepalive=60)
    client.loop_start()
    emit({"ready": True})
    for line in sys.stdin:
        if line.strip() != "count":
            break
        emit(dict(seen))
    client.disconnect()
    client.loop_stop()


def paho_reference(host: str, port: int, publishers: Publishers, timeout_s: float) -> dict[str, Any]:
    """The stream received by a bare paho client in a process of its own: what any Python subscriber costs."""
    from bench.mqtt_probe import probe_until
    from mqtt_contract import Channel, Topics

    child = Child("bench.ingest", "--paho-subscriber", host, str(port))
    try:
        child.read_json(60)

        def count() -> dict[str, Any]:
            child.send("count")
            return child.read_json(60)

        probe_until(
            lambda: count()["probes"] > 0,
            host,
            port,
            Topics(TOPIC_ROOT).for_cluster(PROBE_CLUSTER, Channel.HEARTBEAT),
            probe_payload(),
        )
        go = publishers.go()
        published, published_at = wait_for(lambda: count()["stream"], publishers, timeout_s)
        seen = count()
    finally:
        child.close()
    seconds = max(1e-6, seen["last"] - go) if seen["stream"] else None
    return {
        "published": published,
        "received": seen["stream"],
        "seconds": round(seconds, 3) if seconds else None,
        "msgs_per_s": round(seen["stream"] / seconds) if seconds else 0,
        "lost": published - seen["stream"],
    }


def wait_for(count: Callable[[], int], publishers: Publishers, timeout_s: float, idle_s: float = 10.0):
    """Wait until `count()` reaches what was published, or nothing new arrives for `idle_s` after publishing."""
    published, published_at = publishers.finished()
    deadline = time.monotonic() + timeout_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = count()
        if now_count >= published:
            break
        if now_count != last:
            last, last_change = now_count, time.monotonic()
        elif time.monotonic() - last_change > idle_s:
            break
        time.sleep(0.02)
    return published, published_at


def replica(url: str, host: str, port: int, group: str, folder: str, index: int) -> None:
    """Child: one server replica (`Runtime` as `bcast server` starts it) ingesting the stream; answers on stdin.

    Orders: `count` (messages accounted for: stored rows, plus heartbeats dropped on purpose; and probes
    seen), `finish` (wait until its buffer is stored, then its figures).
    """
    from broadcast_server.db.engine import make_engine
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    engine = make_engine(url)
    settings = get_settings(
        database_url=url,
        audio_dir=Path(folder) / "audio",
        mqtt_host=host,
        mqtt_port=port,
        topic_root=TOPIC_ROOT,
        mqtt_client_id=f"bench-replica-{index}-{uuid.uuid4().hex[:6]}",
        mqtt_shared_group=group or None,
        signing_key_file=Path(folder) / "signing-keys.json",
    )
    runtime = Runtime.from_settings(settings, engine=engine)
    runtime.start()
    bus, ingest = runtime.bus, runtime.ingest
    assert bus is not None and ingest is not None
    stats = ingest.stats
    emit({"ready": True})
    for line in sys.stdin:
        order = line.strip()
        if order == "count":
            emit(
                {
                    "count": stats.heartbeats + stats.stored_reports + bus.dropped_heartbeats,
                    "probes": stats.unknown_cluster,
                }
            )
        elif order in ("idle", "finish"):  # idle: wait until the buffer is stored; finish: then stop
            idle = ingest.wait_idle(120)
            emit(
                {
                    "idle": idle,
                    "idle_at": time.time(),
                    "heartbeats_dropped_by_bus": bus.dropped_heartbeats,
                    "rejected": bus.rejected,
                    "duplicates": stats.duplicate_reports,
                    "db_errors": stats.db_errors,
                    "batches": stats.batches,
                    "stored": stats.heartbeats + stats.stored_reports,
                }
            )
            if order == "finish":
                break
    runtime.stop()
    engine.dispose()


class Replicas:
    """The server processes of the server phase, on one database and one broker, told what to do on stdin."""

    def __init__(self, url: str, host: str, port: int, folder: str, replicas: int) -> None:
        group = f"bench{uuid.uuid4().hex[:6]}" if replicas > 1 else ""
        self.children = [
            Child("bench.ingest", "--replica", url, host, str(port), group, folder, str(i)) for i in range(replicas)
        ]
        for child in self.children:
            child.read_json(120)

    def ask(self, order: str, timeout_s: float = 180) -> list[dict[str, Any]]:
        for child in self.children:
            child.send(order)
        return [child.read_json(timeout_s) for child in self.children]

    def accounted(self) -> int:
        """Messages stored, plus heartbeats dropped on purpose, by every replica so far."""
        return sum(a["count"] for a in self.ask("count"))

    def close(self) -> None:
        for child in self.children:
            child.close(60)


def _round(replicas: Replicas, publishers: Publishers, rate: float, timeout_s: float) -> dict[str, Any]:
    """Publish the stream built at `rate` (0: flat out) and wait until the replicas have stored it."""
    before = replicas.ask("idle")
    go = publishers.go(rate)
    accounted = sum(b["stored"] + b["heartbeats_dropped_by_bus"] for b in before)
    published, published_at = wait_for(lambda: replicas.accounted() - accounted, publishers, timeout_s)
    after = replicas.ask("idle")
    stored = sum(a["stored"] - b["stored"] for a, b in zip(after, before, strict=True))
    dropped = sum(
        a["heartbeats_dropped_by_bus"] - b["heartbeats_dropped_by_bus"] for a, b in zip(after, before, strict=True)
    )
    seconds = max(1e-6, max(a["idle_at"] for a in after) - go)
    return {
        "offered_msgs_per_s": round(rate) if rate else None,
        "published": published,
        "publish_s": round(published_at - go, 3),
        "stored": stored,
        "stored_per_replica": [a["stored"] - b["stored"] for a, b in zip(after, before, strict=True)],
        "seconds": round(seconds, 3),
        "msgs_per_s": round(stored / seconds),
        "lost": published - stored,
        "heartbeats_dropped_by_bus": dropped,
        "go": go,
        "after": after,
    }


def _kept_up(result: dict[str, Any]) -> bool:
    """A paced round is sustained when nothing was lost and storing ended within a second of publishing."""
    return result["lost"] == 0 and result["seconds"] <= result["publish_s"] + 1.0


def zero_loss_search(
    replicas: Replicas,
    publishers: Publishers,
    *,
    start: float,
    round_s: float,
    steps: int,
    timeout_s: float,
    note: Callable[[str], None],
) -> dict[str, Any]:
    """The highest offered rate stored with zero loss, found by raising the rate 1.5x, then halving the gap.

    Each round offers `round_s` seconds of messages at a steady rate (fresh messages every round).
    """
    rounds: list[dict[str, Any]] = []
    good, bad = 0.0, None
    rate = start
    for _ in range(steps):
        publishers.build(max(2_000, round(rate * round_s)))
        note(f"ingest: {rate:,.0f} tin/giây đều đặn")
        result = _round(replicas, publishers, rate, timeout_s)
        result.pop("after"), result.pop("go")
        result["kept_up"] = _kept_up(result)
        rounds.append(result)
        if result["kept_up"]:
            good = rate
            rate = rate * 1.5 if bad is None else (rate + bad) / 2
        else:
            bad = rate
            rate = (good + bad) / 2 if good else rate / 2
    return {"msgs_per_s": round(good), "round_s": round_s, "rounds": rounds}


def server(
    host: str,
    port: int,
    publishers: Publishers,
    database: str,
    clusters: int,
    timeout_s: float,
    replicas: int = 1,
    search: dict[str, Any] | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """`replicas` server processes (a shared subscription splits the stream when more than one) store it.

    Each replica is a child process, as a deployment runs them; this process only counts. First the burst
    (the stream built, flat out: what `ingest_ratio` compares); then, with `search` (the arguments of
    `zero_loss_search`), the highest steady rate stored with zero loss.
    """
    from sqlalchemy import func
    from sqlmodel import select

    from bench.mqtt_probe import probe_until
    from bench.scratch_database import scratch_database
    from bench.synthetic_fleet import cluster_ids, fleet_rows
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import Heartbeat, PlaybackReport
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.signing.keyring import load_or_create_keyring
    from mqtt_contract import Channel, Topics

    messages = publishers.total
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder,
        scratch_database(database, Path(folder), "bench_ingest") as url,
    ):
        upgrade(url)
        engine = make_engine(url)
        import_fleet(engine, fleet_rows(cluster_ids(clusters, "ing")))
        load_or_create_keyring(Path(folder) / "signing-keys.json")  # one key, made before the replicas start
        servers = Replicas(url, host, port, folder, replicas)
        try:
            # A shared subscription hands each probe to one replica: probe until every one has had one.
            probe_until(
                lambda: all(a["probes"] > 0 for a in servers.ask("count")),
                host,
                port,
                Topics(TOPIC_ROOT).for_cluster(PROBE_CLUSTER, Channel.HEARTBEAT),
                probe_payload(),
            )
            burst = _round(servers, publishers, 0.0, timeout_s)
            with session_scope(engine) as session:
                heartbeats = session.exec(select(func.count()).select_from(Heartbeat)).one()
                reports = session.exec(select(func.count()).select_from(PlaybackReport)).one()
                # When the bus had decoded the last message (stored with each row): receiving vs storing.
                received = [
                    session.exec(select(func.max(Heartbeat.received_at))).one(),
                    session.exec(select(func.max(PlaybackReport.received_at))).one(),
                ]
            sustained = None
            if search:
                search = {**search, "start": search["start"] or max(1_000.0, 0.8 * burst["msgs_per_s"])}
                sustained = zero_loss_search(servers, publishers, timeout_s=timeout_s, note=note, **search)
            finished = servers.ask("finish")
        finally:
            servers.close()
        engine.dispose()
    go, after = burst.pop("go"), burst.pop("after")
    last_received = max((r.replace(tzinfo=UTC).timestamp() for r in received if r is not None), default=go)
    return {
        "database": database,
        "replicas": replicas,
        **burst,
        "stored_heartbeats": heartbeats,
        "stored_reports": reports,
        "received_by_bus_s": round(last_received - go, 3),
        "reports_lost": messages // REPORT_EVERY - reports,
        "rejected": sum(f["rejected"] for f in after),
        "duplicates": sum(f["duplicates"] for f in after),
        "db_errors": sum(f["db_errors"] for f in finished),
        "batches": sum(f["batches"] for f in after),
        "all_idle": all(f["idle"] for f in after),
        "zero_loss": sustained,
    }


def run(
    *,
    messages: int = 100_000,
    clusters: int = 2_000,
    publishers: int = DEFAULT_PUBLISHERS,
    clients: int = DEFAULT_CLIENTS,
    database: str = "sqlite",
    replicas: int = 1,
    zero_loss_rounds: int = 6,
    round_s: float = 8.0,
    timeout_s: float = 600.0,
    note: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Both phases on one broker; returns the figures with `ingest_ratio` = server rate / baseline rate.

    `zero_loss_rounds` steady-rate rounds of `round_s` seconds follow the burst (0: none), starting from
    a little under the burst's rate.
    """
    from bcast.broker import LocalBroker
    from bench.mqtt_probe import sys_counter

    with LocalBroker(extra_config=BROKER_CONFIG) as broker:
        if broker.kind != "mosquitto":
            raise RuntimeError("the ingest benchmark needs mosquitto (apt-get install mosquitto mosquitto-clients)")
        note(f"ingest: {publishers} tiến trình phát × {clients} kết nối, {messages:,} tin")
        pool = Publishers(broker.port, publishers, clients, clusters)
        pool.build(messages)
        dropped = "$SYS/broker/publish/messages/dropped"
        try:
            note("ingest: mosquitto_sub nhận (mốc so sánh)")
            base = baseline(broker.host, broker.port, pool, timeout_s)
            time.sleep(1.5)  # let $SYS publish the counter after the phase
            base["broker_dropped"] = sys_counter(broker.host, broker.port, dropped)
            note("ingest: một client paho trần nhận (giới hạn của thư viện)")
            paho = paho_reference(broker.host, broker.port, pool, timeout_s)
            note(f"ingest: {replicas} bản sao máy chủ lưu vào {database}")
            search = {"start": 0.0, "round_s": round_s, "steps": zero_loss_rounds} if zero_loss_rounds else None
            srv = server(broker.host, broker.port, pool, database, clusters, timeout_s, replicas, search, note)
            time.sleep(1.5)
            after = sys_counter(broker.host, broker.port, dropped)
            srv["broker_dropped"] = None if after is None else after - (base["broker_dropped"] or 0)
        finally:
            pool.close()
    return {
        "messages": messages,
        "clusters": clusters,
        "publishers": publishers * clients,
        "publisher_processes": publishers,
        "replicas": replicas,
        "baseline": base,
        "paho_reference": paho,
        "server": srv,
        "ingest_msgs_per_s": srv["msgs_per_s"],
        "ingest_baseline_msgs_per_s": base["msgs_per_s"],
        "ingest_paho_msgs_per_s": paho["msgs_per_s"],
        "ingest_ratio": round(srv["msgs_per_s"] / base["msgs_per_s"], 3) if base["msgs_per_s"] else None,
        "ingest_lost": srv["lost"],
        "ingest_reports_lost": srv["reports_lost"],
        "ingest_heartbeats_dropped": srv["heartbeats_dropped_by_bus"],
        "ingest_zero_loss_msgs_per_s": srv["zero_loss"]["msgs_per_s"] if srv["zero_loss"] else None,
        "ingest_zero_loss_ratio": (
            round(srv["zero_loss"]["msgs_per_s"] / base["msgs_per_s"], 3)
            if srv["zero_loss"] and base["msgs_per_s"]
            else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, default=2_000)
    parser.add_argument("--publishers", type=int, default=DEFAULT_PUBLISHERS, help="publisher processes")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="MQTT connections per publisher process")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1, help="server processes sharing the subscription")
    parser.add_argument("--zero-loss-rounds", type=int, default=6, help="steady-rate rounds after the burst (0: none)")
    parser.add_argument("--round-s", type=float, default=8.0, help="seconds of messages per steady-rate round")
    parser.add_argument("--publisher", nargs=5, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--replica", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--paho-subscriber", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publisher(*args.publisher)
        return
    if args.paho_subscriber:
        paho_subscriber(args.paho_subscriber[0], int(args.paho_subscriber[1]))
        return
    if args.replica:
        url, host, port, group, folder, index = args.replica
        replica(url, host, int(port), group, folder, int(index))
        return
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.replicas > 1 and args.database != "postgres":
        parser.error("--replicas above 1 needs --database postgres (replicas share one PostgreSQL)")
    result = run(
        messages=args.messages,
        clusters=args.clusters,
        publishers=args.publishers,
        clients=args.clients,
        database=args.database,
        replicas=args.replicas,
        zero_loss_rounds=args.zero_loss_rounds,
        round_s=args.round_s,
        note=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
