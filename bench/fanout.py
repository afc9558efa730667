"""Fan-out: from "play now" to playback start on every cluster, against the broker alone delivering the same commands.

Run: .venv/bin/python -m bench.fanout [--sizes 202,2000,10000] [--database sqlite|postgres] [--audio-s 10]

For each fleet size N, two measurements, each on a fresh mosquitto (bcast.broker.LocalBroker) and with the
fleet in a child process of its own (one socket per cluster; the file limit is raised to its hard limit):
- baseline: N bare paho clients (one asyncio loop, `AsyncioPahoDriver`) each subscribed at QoS 1 to its
  cluster's command topic; this process publishes the same signed play commands, pre-encoded, with one
  paho client (QoS 1, 1,000 in flight). Latency of a cluster = its command's arrival - first publish.
- server: the real server in this process (`Runtime` + the FastAPI app under uvicorn, SQLite or PostgreSQL)
  with the fleet imported, and N real agents (`firmware_sim.FleetSimulation`, simulated players, trusting
  the server's signing key). "Play now" is the dispatch service: `create_broadcast` for the whole province
  then `send_broadcast` (what POST /api/v1/broadcasts runs). Latency of a cluster = the moment its
  simulated speaker started playing (its own ground truth) - the moment `create_broadcast` was called;
  it includes the command, the signature check, the audio download from the server (a `--audio-s` tone
  rendered by `audio.render`, as an uploaded recording would be) and its hash check.
p50, p99 and max are nearest-rank over all N clusters; a cluster that never started counts as infinite
(the figure is then null). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.child_process import Child, emit  # noqa: E402
from bench.proc_stats import cpu_s  # noqa: E402

SPEED = 20.0  # simulated speakers play 20x faster than real time: playback start is what is measured
BROKER_CONFIG = "max_connections -1"
PREFIX = "fan"


def percentiles(latencies: list[float], n: int) -> dict[str, float | None]:
    """Nearest-rank p50/p99/max over `n` clusters; the missing ones count as never (infinite)."""
    ranked = sorted(latencies) + [math.inf] * (n - len(latencies))

    def rank(p: float) -> float | None:
        value = ranked[max(0, math.ceil(p * n) - 1)]
        return None if math.isinf(value) else round(value, 3)

    return {"p50_s": rank(0.50), "p99_s": rank(0.99), "max_s": rank(1.0)}


def tone(path: Path, seconds: float) -> Path:
    """A mono sine tone, encoded by the file's extension (.wav, .mp3): a stand-in for a recording."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:duration={seconds}", "-ac", "1", "-ar", "44100", str(path)],
        check=True,
    )  # fmt: skip
    return path


# ----------------------------------------------------------------------------------------- children


async def _collect(received: Callable[[], list[float]], n: int) -> None:
    """Child: wait for 'collect <timeout>', then until `n` clusters have a time or the timeout; print them."""
    loop = asyncio.get_running_loop()
    order = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    timeout_s = float(order[1]) if len(order) > 1 else 60.0
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and len(received()) < n:
        await asyncio.sleep(0.05)
    emit({"times": received()})
    # Stay connected until the parent has stopped the broker: the broker then closes first and keeps the
    # TIME_WAIT sockets, so the next size does not run out of ephemeral ports.
    await loop.run_in_executor(None, sys.stdin.read)


async def fleet_agents(n: int, port: int, data_root: Path, key_file: Path) -> None:
    """Child: N real agents trusting the server's key; report when each simulated speaker started."""
    from bench.synthetic_fleet import cluster_ids
    from broadcast_server.signing.keyring import load_or_create_keyring
    from firmware_sim.fleet_sim import FleetSimulation

    sim = FleetSimulation(
        cluster_ids(n, PREFIX),
        data_root=data_root,
        mqtt_port=port,
        speed=SPEED,
        trusted_keys=load_or_create_keyring(key_file).trusted_public_keys,
    )
    await sim.start(connect_timeout_s=600)
    emit({"ready": True, "connect_s": round(sim.connect_s or 0.0, 3)})

    def started() -> list[float]:
        return [c.player.log[0].started_at.timestamp() for c in sim.clusters.values() if c.player.log]

    await _collect(started, n)


async def fleet_bare(n: int, port: int) -> None:
    """Child: N bare paho clients subscribed to their command topics; report when each got its command."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from bench.synthetic_fleet import cluster_ids
    from mqtt_contract import Channel, Topics
    from speaker_agent.mqtt_loop import AsyncioPahoDriver

    loop = asyncio.get_running_loop()
    topics = Topics()
    arrived: dict[str, float] = {}
    subscribed = asyncio.Event()
    acks = 0

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        nonlocal acks
        acks += 1
        if acks == n:
            subscribed.set()

    def on_message(client: mqtt.Client, userdata: str, message: mqtt.MQTTMessage) -> None:
        arrived.setdefault(userdata, time.time())

    drivers = []
    started = loop.time()
    for cluster_id in cluster_ids(n, PREFIX):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cluster_id, userdata=cluster_id)
        topic = topics.for_cluster(cluster_id, Channel.COMMAND)
        client.on_connect = lambda c, u, f, rc, p, topic=topic: c.subscribe(topic, qos=1)
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        drivers.append(AsyncioPahoDriver(client, loop))
        client.connect("127.0.0.1", port, keepalive=60)
        await asyncio.sleep(0)
    await asyncio.wait_for(subscribed.wait(), 600)
    emit({"ready": True, "connect_s": round(loop.time() - started, 3)})
    await _collect(lambda: list(arrived.values()), n)


def child_main(kind: str, n: int, port: int, data_root: str, key_file: str) -> None:
    from bench.sim_connect import raise_fd_limit

    raise_fd_limit()
    if kind == "agents":
        asyncio.run(fleet_agents(n, port, Path(data_root), Path(key_file)))
    else:
        asyncio.run(fleet_bare(n, port))
    os._exit(0)  # skip an orderly disconnect of every client: it is not measured


# ----------------------------------------------------------------------------------------- parent


def _commands(n: int, key_file: Path, audio: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The play commands the server would publish to N clusters, signed with its key, encoded."""
    from datetime import timedelta

    from bench.synthetic_fleet import cluster_ids
    from broadcast_server.db.types import utcnow
    from broadcast_server.models import AudioAsset, Broadcast
    from broadcast_server.services.dispatch import play_command
    from broadcast_server.signing.command_signer import ServerCommandSigner
    from mqtt_contract import Channel, Topics, encode

    signer = ServerCommandSigner(key_file)
    now = utcnow()
    broadcast = Broadcast(
        id="b" * 32, bulletin_id="x", audio_asset_id=audio["sha256"], priority="normal", target={},
        created_at=now, expires_at=now + timedelta(seconds=600),
    )  # fmt: skip
    asset = AudioAsset(id=audio["sha256"], size_bytes=audio["size_bytes"], duration_s=audio["duration_s"])
    topics = Topics()
    out = []
    for i, cluster_id in enumerate(cluster_ids(n, PREFIX)):
        command = play_command(broadcast, asset, "Thông báo khẩn", f"{i:032x}", audio["url"])
        out.append((topics.for_cluster(cluster_id, Channel.COMMAND), encode(Channel.COMMAND, signer.sign(command))))
    return out


def broker_alone(n: int, key_file: Path, audio: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """The baseline: one paho publisher, the broker, N bare subscribers."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from bcast.broker import LocalBroker

    payloads = _commands(n, key_file, audio)
    broker = LocalBroker(extra_config=BROKER_CONFIG).start()
    child = None
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-fanout-publisher")
    try:
        child = Child("bench.fanout", "--fleet", "bare", str(n), str(broker.port), "-", "-")
        ready = child.read_json(timeout_s)
        publisher.max_inflight_messages_set(1000)
        publisher.max_queued_messages_set(0)
        connected = threading.Event()
        publisher.on_connect = lambda c, u, f, rc, p: connected.set()
        publisher.connect(broker.host, broker.port, keepalive=60)
        publisher.loop_start()
        connected.wait(30)
        t0 = time.time()
        infos = [publisher.publish(topic, payload, qos=1) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(timeout_s)
        published_s = time.time() - t0
        child.send(f"collect {timeout_s}")
        times = child.read_json(timeout_s + 60)["times"]
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        broker.stop()
        if child is not None:
            child.close()
    return {
        "clusters": n,
        "connect_s": ready["connect_s"],
        "published_s": round(published_s, 3),
        "received": len(times),
        **percentiles([t - t0 for t in times], n),
    }


def server_fanout(
    n: int, database: str, wav: Path, timeout_s: float, note: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The real server and N real agents; returns (figures, the audio the agents fetched)."""
    from sqlmodel import col, func, select

    from bcast.broker import LocalBroker
    from bcast.demo import ServerThread, listening_socket
    from bench.scratch_database import scratch_database
    from bench.synthetic_fleet import cluster_ids, fleet_rows
    from broadcast_server.api.app import create_app
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import AdminUnit, AudioAsset, Delivery
    from broadcast_server.runtime import Runtime
    from broadcast_server.services.bulletins import approve_bulletin
    from broadcast_server.services.dispatch import Target, create_broadcast, send_broadcast
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.services.recordings import create_audio_bulletin
    from broadcast_server.settings import get_settings
    from broadcast_server.signing.keyring import load_or_create_keyring

    with (
        tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp,
        scratch_database(database, Path(tmp), "bench_fanout") as url,
    ):
        folder = Path(tmp)
        upgrade(url)
        engine = make_engine(url)
        import_fleet(engine, fleet_rows(cluster_ids(n, PREFIX)))
        broker = LocalBroker(extra_config=BROKER_CONFIG).start()
        http_socket = listening_socket()
        http_port = http_socket.getsockname()[1]
        settings = get_settings(
            database_url=url,
            audio_dir=folder / "audio",
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            public_url=f"http://127.0.0.1:{http_port}",
            signing_key_file=folder / "signing-keys.json",
        )
        load_or_create_keyring(settings.signing_key_file)
        runtime = Runtime.from_settings(settings, engine=engine)
        server = ServerThread(create_app(runtime), http_socket)
        child = None
        try:
            server.start()
            with session_scope(engine) as session:
                bulletin = create_audio_bulletin(
                    session, settings.audio_dir, wav, filename="khan-cap.wav", title="Thông báo khẩn (đo thử)"
                )
                approve_bulletin(session, bulletin.id)
                bulletin_id = bulletin.id
                asset = session.get(AudioAsset, bulletin.audio_asset_id)
                audio = {"sha256": asset.id, "size_bytes": asset.size_bytes, "duration_s": asset.duration_s}
                province = session.exec(select(AdminUnit.id).where(col(AdminUnit.parent_id).is_(None))).one()
            note(f"fan-out {n:,}: {n:,} cụm loa đang kết nối")
            child = Child(
                "bench.fanout", "--fleet", "agents", str(n), str(broker.port), str(folder / "agents"),
                str(settings.signing_key_file),
            )  # fmt: skip
            ready = child.read_json(timeout_s * 3)
            runtime.ingest.wait_idle(120)  # every cluster's status and first heartbeat stored first
            note(f"fan-out {n:,}: phát ngay")
            # Who was busy during the fan-out: this process (the server), the fleet's, the broker.
            mosquitto = getattr(broker, "_process", None)  # LocalBroker keeps its process private
            pids = {"server": os.getpid(), "fleet": child.process.pid, "broker": getattr(mosquitto, "pid", 0)}
            cpu0 = {name: cpu_s(pid) for name, pid in pids.items() if pid}
            t0 = time.time()
            with session_scope(engine) as session:
                broadcast, _ = create_broadcast(
                    session, bulletin_id, Target(unit_ids=(province,)), ttl_s=settings.command_ttl_s
                )
                broadcast_id = broadcast.id
            acknowledged = send_broadcast(engine, runtime.bus, broadcast_id, settings.public_url)
            sent_s = time.time() - t0
            child.send(f"collect {timeout_s}")
            times = child.read_json(timeout_s + 60)["times"]
            window_s = time.time() - t0
            cpu_share = {name: round((cpu_s(pids[name]) - used) / window_s, 2) for name, used in cpu0.items()}
            # Every outcome stored: the reports of the plays reached the database (bounded wait).
            deadline, outcomes = time.monotonic() + 60, 0
            while time.monotonic() < deadline:
                with session_scope(engine) as session:
                    outcomes = session.exec(
                        select(func.count()).where(
                            Delivery.broadcast_id == broadcast_id,
                            col(Delivery.state).not_in(("queued", "sent")),
                        )
                    ).one()
                if outcomes >= n:
                    break
                time.sleep(0.2)
            reported_s = time.time() - t0
        finally:
            server.stop()
            broker.stop()
            if child is not None:
                child.close()
            engine.dispose()
    figures = {
        "clusters": n,
        "database": database,
        "connect_s": ready["connect_s"],
        "commands_acknowledged": acknowledged,
        "dispatch_s": round(sent_s, 3),
        "started": len(times),
        **percentiles([t - t0 for t in times], n),
        # CPU seconds per wall second from "play now" until the last speaker started (1.0 = one core busy).
        "cores_busy": cpu_share,
        "outcomes_stored": outcomes,
        "outcomes_stored_s": round(reported_s, 3) if outcomes >= n else None,
    }
    audio["url"] = f"{settings.public_url}/api/v1/audio/{audio['sha256']}"
    return figures, audio


def run(
    *,
    sizes: tuple[int, ...] = (202, 2_000, 10_000),
    database: str = "sqlite",
    audio_s: float = 10.0,
    note: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Server and baseline for each size; `fanout_p99_s` etc. keyed by the size as a string."""
    from broadcast_server.signing.keyring import load_or_create_keyring

    per_size: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fanout-audio-") as tmp:
        wav = tone(Path(tmp) / "tone.wav", audio_s)
        key_file = Path(tmp) / "baseline-keys.json"
        load_or_create_keyring(key_file)
        for n in sizes:
            timeout_s = 60 + n / 50
            server, audio = server_fanout(n, database, wav, timeout_s, note)
            note(f"fan-out {n:,}: chỉ máy chủ MQTT (mốc so sánh)")
            baseline = broker_alone(n, key_file, audio, timeout_s)
            per_size[str(n)] = {"server": server, "baseline": baseline, "audio_bytes": audio["size_bytes"]}
    return {
        "sizes": per_size,
        "audio_s": audio_s,
        "fanout_p50_s": {k: v["server"]["p50_s"] for k, v in per_size.items()},
        "fanout_p99_s": {k: v["server"]["p99_s"] for k, v in per_size.items()},
        "fanout_max_s": {k: v["server"]["max_s"] for k, v in per_size.items()},
        "fanout_baseline_p50_s": {k: v["baseline"]["p50_s"] for k, v in per_size.items()},
        "fanout_baseline_p99_s": {k: v["baseline"]["p99_s"] for k, v in per_size.items()},
        "fanout_baseline_max_s": {k: v["baseline"]["max_s"] for k, v in per_size.items()},
        "fanout_p99_ratio": {
            k: round(v["server"]["p99_s"] / v["baseline"]["p99_s"], 2)
            if v["server"]["p99_s"] and v["baseline"]["p99_s"]
            else None
            for k, v in per_size.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="202,2000,10000")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--audio-s", type=float, default=10.0, help="length of the broadcast's audio")
    parser.add_argument("--fleet", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fleet:
        kind, n, port, data_root, key_file = args.fleet
        child_main(kind, int(n), int(port), data_root, key_file)
        return
    sizes = tuple(int(s) for s in args.sizes.split(","))
    result = run(
        sizes=sizes,
        database=args.database,
        audio_s=args.audio_s,
        note=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
