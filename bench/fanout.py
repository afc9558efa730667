"""Fan-out: from "play now" to playback start on every cluster, against the broker alone delivering the same commands.

Run: .venv/bin/python -m bench.fanout [--sizes 202,2000,10000] [--database sqlite|postgres] [--audio-s 10]
     [--fleet-processes 2] [--agents-on-disk]

For each fleet size N, two measurements, each on a fresh mosquitto (bcast.broker.LocalBroker) and with the
fleet in child processes of its own (`--fleet-processes`, default 2, this machine's cores: each child takes
every second cluster; one socket per cluster; the file limit is raised to its hard limit). One interpreter
cannot run the work of 10,000 agents in 10 s; devices each have a CPU of their own, so the simulator's
own CPU time is load on this machine that no real fleet puts on the server's.
- baseline: N bare paho clients (one asyncio loop per child, `AsyncioPahoDriver`) each subscribed at QoS 1
  to its cluster's command topic; this process publishes the same signed play commands, pre-encoded, with
  one paho client (QoS 1, 1,000 in flight). Latency of a cluster = its command's arrival - first publish.
- server: the real server in this process (`Runtime` + the FastAPI app under uvicorn, SQLite or PostgreSQL)
  with the fleet imported, and N real agents (`firmware_sim.FleetSimulation`, simulated players, trusting
  the server's signing key). "Play now" is the dispatch service: `create_broadcast` for the whole province
  then `send_broadcast` (what POST /api/v1/broadcasts runs). Latency of a cluster = the moment its
  simulated speaker started playing (its own ground truth) - the moment `create_broadcast` was called;
  it includes the command, the signature check, the audio download from the server (a `--audio-s` tone
  rendered by `audio.render`, as an uploaded recording would be) and its hash check.
  What the simulator changes (firmware_sim.fleet_sim): the children run on uvloop, and the agents' HTTP
  client is aiohttp (firmware_sim.network) rather than a device's urllib; the Downloader, its
  checks and its disk writes are the agent's own. The agents' data folders (journal, outbox, audio cache)
  are on tmpfs (/dev/shm) when there is one: on one disk, 10,000 agents' file writes, renames and fsyncs
  queue in one ext4 journal, which no fleet of devices with a card each does; so a device's own write
  and fsync time is not in the figure (the JSON says `agents_disk`; `--agents-on-disk` measures with them
  on the disk).
  The server is uvicorn as `bcast server` runs it (uvloop and httptools when installed), without the
  reverse proxy production puts in front (docker/Caddyfile).
p50, p99 and max are nearest-rank over all N clusters; a cluster that never started counts as infinite
(the figure is then null). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
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
FLEET_PROCESSES = 2  # this machine's cores: one interpreter (one GIL) cannot run 10,000 agents' work in time
SHM = Path("/dev/shm")  # the agents' data folders go here when it is there (a tmpfs: see the docstring)
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


async def _collect(received: Callable[[], list[float]], n: int, count: Callable[[], int] | None = None) -> None:
    """Child: wait for 'collect <timeout>', then until `n` clusters have a time or the timeout; print them."""
    loop = asyncio.get_running_loop()
    order = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    timeout_s = float(order[1]) if len(order) > 1 else 60.0
    deadline = loop.time() + timeout_s
    count = count or (lambda: len(received()))  # polled 20 times a second during the measurement: keep it cheap
    while loop.time() < deadline and count() < n:
        await asyncio.sleep(0.05)
    emit({"times": received()})
    # Stay connected until the parent has stopped the broker: the broker then closes first and keeps the
    # TIME_WAIT sockets, so the next size does not run out of ephemeral ports.
    await loop.run_in_executor(None, sys.stdin.read)


def _part(n: int, part: int, parts: int) -> list[str]:
    """The clusters one child of `parts` simulates: every parts-th of the N, from the part-th on."""
    from bench.synthetic_fleet import cluster_ids

    return cluster_ids(n, PREFIX)[part::parts]


async def fleet_agents(n: int, port: int, data_root: Path, key_file: Path, part: int = 0, parts: int = 1) -> None:
    """Child: its part of N real agents trusting the server's key; report when each simulated speaker started."""
    from broadcast_server.signing.keyring import load_or_create_keyring
    from firmware_sim.fleet_sim import FleetSimulation

    ids = _part(n, part, parts)
    sim = FleetSimulation(
        ids,
        data_root=data_root,
        mqtt_port=port,
        speed=SPEED,
        trusted_keys=load_or_create_keyring(key_file).trusted_public_keys,
    )
    await sim.start(connect_timeout_s=600)
    emit({"ready": True, "connect_s": round(sim.connect_s or 0.0, 3)})

    def started() -> list[float]:
        return [c.player.log[0].started_at.timestamp() for c in sim.clusters.values() if c.player.log]

    await _collect(started, len(ids), lambda: sum(1 for c in sim.clusters.values() if c.player.log))


async def fleet_bare(n: int, port: int, part: int = 0, parts: int = 1) -> None:
    """Child: its part of N bare paho clients subscribed to their command topics; report when each got its command."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from mqtt_contract import Channel, Topics
    from speaker_agent.mqtt_loop import AsyncioPahoDriver

    loop = asyncio.get_running_loop()
    topics = Topics()
    ids = _part(n, part, parts)
    arrived: dict[str, float] = {}
    subscribed = asyncio.Event()
    acks = 0

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        nonlocal acks
        acks += 1
        if acks == len(ids):
            subscribed.set()

    def on_message(client: mqtt.Client, userdata: str, message: mqtt.MQTTMessage) -> None:
        arrived.setdefault(userdata, time.time())

    drivers = []
    started = loop.time()
    for cluster_id in ids:
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
    await _collect(lambda: list(arrived.values()), len(ids))


def child_main(kind: str, n: int, port: int, data_root: str, key_file: str, part: int = 0, parts: int = 1) -> None:
    from bench.sim_connect import raise_fd_limit
    from firmware_sim.fleet_sim import run_fleet

    raise_fd_limit()
    if kind == "agents":
        run_fleet(fleet_agents(n, port, Path(data_root), Path(key_file), part, parts))
    else:
        run_fleet(fleet_bare(n, port, part, parts))
    os._exit(0)  # skip an orderly disconnect of every client: it is not measured


class Fleet:
    """The fleet's child processes (`parts` of them, each with every parts-th cluster), started and read together."""

    def __init__(self, kind: str, n: int, port: int, data_root: str, key_file: str, parts: int) -> None:
        self.children: list[Child] = []
        try:
            for part in range(parts):
                args = (kind, str(n), str(port), data_root, key_file, str(part), str(parts))
                self.children.append(Child("bench.fanout", "--fleet", *args))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self.children]

    def ready(self, timeout_s: float) -> dict[str, Any]:
        """Wait until every child has connected all its clients; the slowest child's connect time."""
        answers = [child.read_json(timeout_s) for child in self.children]
        return {"connect_s": max(answer["connect_s"] for answer in answers)}

    def collect(self, timeout_s: float) -> list[float]:
        """Every cluster's time, from all children (each waits up to `timeout_s` for its own)."""
        for child in self.children:
            child.send(f"collect {timeout_s}")
        return [t for child in self.children for t in child.read_json(timeout_s + 60)["times"]]

    def close(self) -> None:
        for child in self.children:
            child.close()


# ----------------------------------------------------------------------------------------- parent


def simulated_disks(folder: Path, tmpfs: bool = True) -> Path:
    """A new folder for the agents' data (each agent's state, outbox and audio cache): on tmpfs if asked and there."""
    if tmpfs and SHM.is_dir() and os.access(SHM, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="bcast-fanout-agents-", dir=SHM))
    (folder / "agents").mkdir()
    return folder / "agents"


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


def broker_alone(
    n: int, key_file: Path, audio: dict[str, Any], timeout_s: float, processes: int = FLEET_PROCESSES
) -> dict[str, Any]:
    """The baseline: one paho publisher, the broker, N bare subscribers (in `processes` children)."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from bcast.broker import LocalBroker

    payloads = _commands(n, key_file, audio)
    broker = LocalBroker(extra_config=BROKER_CONFIG).start()
    fleet = None
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-fanout-publisher")
    try:
        fleet = Fleet("bare", n, broker.port, "-", "-", processes)
        ready = fleet.ready(timeout_s)
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
        times = fleet.collect(timeout_s)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        broker.stop()
        if fleet is not None:
            fleet.close()
    return {
        "clusters": n,
        "connect_s": ready["connect_s"],
        "published_s": round(published_s, 3),
        "received": len(times),
        **percentiles([t - t0 for t in times], n),
    }


def server_fanout(
    n: int,
    database: str,
    wav: Path,
    timeout_s: float,
    note: Callable[[str], None],
    processes: int = FLEET_PROCESSES,
    agents_tmpfs: bool = True,
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
        fleet = None
        disks = simulated_disks(folder, agents_tmpfs)
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
            fleet = Fleet("agents", n, broker.port, str(disks), str(settings.signing_key_file), processes)
            ready = fleet.ready(timeout_s * 3)
            runtime.ingest.wait_idle(120)  # every cluster's status and first heartbeat stored first
            note(f"fan-out {n:,}: phát ngay")
            # Who was busy during the fan-out: this process (the server), the fleet's, the broker.
            mosquitto = getattr(broker, "_process", None)  # LocalBroker keeps its process private
            pids = {"server": [os.getpid()], "fleet": fleet.pids, "broker": [getattr(mosquitto, "pid", 0)]}
            cpu0 = {name: sum(cpu_s(pid) for pid in group) for name, group in pids.items() if all(group)}
            t0 = time.time()
            with session_scope(engine) as session:
                broadcast, _ = create_broadcast(
                    session, bulletin_id, Target(unit_ids=(province,)), ttl_s=settings.command_ttl_s
                )
                broadcast_id = broadcast.id
            acknowledged = send_broadcast(engine, runtime.bus, broadcast_id, settings.public_url)
            sent_s = time.time() - t0
            times = fleet.collect(timeout_s)
            window_s = time.time() - t0
            cpu_used = {name: sum(cpu_s(pid) for pid in pids[name]) - used for name, used in cpu0.items()}
            cpu_share = {name: round(used / window_s, 2) for name, used in cpu_used.items()}
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
            if fleet is not None:
                fleet.close()
            engine.dispose()
            shutil.rmtree(disks, ignore_errors=True)
    figures = {
        "clusters": n,
        "database": database,
        "connect_s": ready["connect_s"],
        "fleet_processes": processes,
        "agents_disk": "tmpfs" if disks.parent == SHM else "disk",
        "commands_acknowledged": acknowledged,
        "dispatch_s": round(sent_s, 3),
        "started": len(times),
        **percentiles([t - t0 for t in times], n),
        # CPU seconds per wall second from "play now" until the last speaker started (1.0 = one core busy).
        "cores_busy": cpu_share,
        # The same CPU time per cluster (ms), for an A/B of the agents' or the server's code.
        "cpu_ms_per_cluster": {name: round(1000 * used / n, 3) for name, used in cpu_used.items()},
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
    processes: int = FLEET_PROCESSES,
    agents_tmpfs: bool = True,
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
            server, audio = server_fanout(n, database, wav, timeout_s, note, processes, agents_tmpfs)
            note(f"fan-out {n:,}: chỉ máy chủ MQTT (mốc so sánh)")
            baseline = broker_alone(n, key_file, audio, timeout_s, processes)
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
    parser.add_argument(
        "--fleet-processes", type=int, default=FLEET_PROCESSES, help="child processes the simulated fleet runs in"
    )
    parser.add_argument(
        "--agents-on-disk", action="store_true", help="the agents' data folders on the disk, not on tmpfs (/dev/shm)"
    )
    parser.add_argument("--fleet", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fleet:
        kind, n, port, data_root, key_file, part, parts = args.fleet
        child_main(kind, int(n), int(port), data_root, key_file, int(part), int(parts))
        return
    sizes = tuple(int(s) for s in args.sizes.split(","))
    result = run(
        sizes=sizes,
        database=args.database,
        audio_s=args.audio_s,
        note=lambda text: print(text, file=sys.stderr, flush=True),
        processes=max(1, args.fleet_processes),
        agents_tmpfs=not args.agents_on_disk,
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
