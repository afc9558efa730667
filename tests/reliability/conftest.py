"""Fixtures of the fault tests: a restartable broker that keeps its sessions, a server, TCP proxies, origins.

Every test here injects one fault a few times on loopback and writes one row of the fault table
(docs/reliability.md) to ``BCAST_RELIABILITY_OUT`` (default ``build/reliability/``); scripts/reliability_table.py
renders the rows. Rounds per fault: ``BCAST_RELIABILITY_ROUNDS`` (default 3; CI keeps the default).
Loss and duplicates are asserted; times are measured and written down, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bcast.broker import LocalBroker, stop_process

REPO = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("BCAST_RELIABILITY_OUT") or REPO / "build" / "reliability")
ROUNDS = max(1, int(os.environ.get("BCAST_RELIABILITY_ROUNDS", "3")))


# ---------------------------------------------------------------------------------------------- the table


@dataclass
class FaultRow:
    """One fault's line of the table: what was injected and what the ground truth says happened."""

    key: str
    fault: str
    mechanism: str
    injected: int = 0
    reports_made: int = 0
    reports_lost: int = 0
    plays_expected: int = 0
    plays_missing: int = 0
    duplicate_plays: int = 0
    recover_s: list[float] = field(default_factory=list)  # fault's end -> first outcome stored after it
    settle_s: list[float] = field(default_factory=list)  # fault's end -> every outcome of the round stored
    notes: list[str] = field(default_factory=list)

    def count_fleet(self, sim: Any, stored: dict[str, Any], broadcasts: list[str]) -> None:
        """Fill the counts from a simulated fleet's ground truth: its reports and its speakers' plays."""
        made = {r["id"] for r in sim.reports()}
        plays = [
            (p.cluster_id, p.broadcast_id) for p in sim.ground_truth() if p.completed and p.broadcast_id in broadcasts
        ]
        self.reports_made = len(made)
        self.reports_lost = len(made - set(stored))
        self.plays_expected = len(sim.cluster_ids) * len(broadcasts)
        self.plays_missing = len({(c, b) for c in sim.cluster_ids for b in broadcasts} - set(plays))
        self.duplicate_plays = duplicate_count(plays)

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        for name in ("recover_s", "settle_s"):
            values = document[name]
            document[f"{name}_p50"] = round(statistics.median(values), 2) if values else None
            document[f"{name}_max"] = round(max(values), 2) if values else None
            document[name] = [round(v, 3) for v in values]
        document["rounds_env"] = ROUNDS
        document["written_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return document


@pytest.fixture
def fault_table() -> Callable[[FaultRow], Path]:
    """Write a fault's row as JSON (one file per fault, replaced by each run) and print it."""

    def write(row: FaultRow) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{row.key}.json"
        document = row.as_json()
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"\n{row.fault}: {json.dumps({k: document[k] for k in document if k != 'notes'}, ensure_ascii=False)}")
        return path

    return write


@pytest.fixture
def fault_row() -> type[FaultRow]:
    return FaultRow


@pytest.fixture
def rounds() -> int:
    return ROUNDS


def duplicate_count(keys: list[Any]) -> int:
    """How many items repeat an earlier one (3 plays of one command: 2 duplicates)."""
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


@pytest.fixture
def duplicates() -> Callable[[list[Any]], int]:
    return duplicate_count


# ---------------------------------------------------------------------------------------------- broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A mosquitto of our own, configured as in production to keep sessions across a restart (persistence)."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("these tests need mosquitto")
    store = Path(tempfile.mkdtemp(prefix="bcast-broker-store-"))
    store.chmod(0o777)  # mosquitto started as root drops to its own user, which must write here
    config = f"persistence true\npersistence_location {store}/\nautosave_interval 60\nlog_dest none\nmax_connections -1"
    running = LocalBroker(extra_config=config).start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(store, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- event loop


class BackgroundLoop:
    """An asyncio loop on its own thread, for servers the code under test reaches from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="reliability-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def background_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


# ---------------------------------------------------------------------------------------------- TCP proxy


class TcpProxy:
    """Forwards a loopback port to a target; `cut()` drops every connection and refuses new ones until
    `restore()`. With `rate_bps`, what flows back from the target is slowed to that many bytes per second."""

    def __init__(self, background: BackgroundLoop, target_host: str, target_port: int, *, rate_bps: float = 0) -> None:
        self.background = background
        self.target = (target_host, target_port)
        self.rate_bps = rate_bps
        self.port = 0
        self.cut_off = False
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> TcpProxy:
        async def boot() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self.background.run(boot())
        return self

    def cut(self) -> None:
        """The link goes down: connections are reset, new ones closed at once."""

        def go() -> None:
            self.cut_off = True
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
            self._writers.clear()

        self.background.call(go)

    def restore(self) -> None:
        self.background.call(lambda: setattr(self, "cut_off", False))

    def stop(self) -> None:
        async def down() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        with contextlib.suppress(Exception):
            self.background.run(down())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer, 0), self._pipe(up_reader, writer, self.rate_bps))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float) -> None:
        try:
            while True:
                chunk = await reader.read(8192 if rate else 65536)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(chunk) / rate)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


@pytest.fixture
def tcp_proxy(background_loop: BackgroundLoop) -> Iterator[Callable[..., TcpProxy]]:
    """A factory of proxies: `tcp_proxy(host, port, rate_bps=0)`."""
    made: list[TcpProxy] = []

    def make(host: str, port: int, *, rate_bps: float = 0) -> TcpProxy:
        proxy = TcpProxy(background_loop, host, port, rate_bps=rate_bps).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


# ---------------------------------------------------------------------------------------------- audio origin


class Origin:
    """firmware_sim's AudioOrigin on the background loop, serving files at the server's audio path.

    `base_url` stands for the server's public URL: dispatch names audio `<base_url>/api/v1/audio/<sha256>`."""

    def __init__(self, background: BackgroundLoop, via: Callable[[int], int] | None = None) -> None:
        from firmware_sim.origin import AudioOrigin

        class QueryBlindOrigin(AudioOrigin):
            """Ignores the query string (the server's download authorisation, which only the server checks)."""

            async def _respond(self, writer: Any, method: str, path: str, headers: dict[str, str]) -> None:
                await super()._respond(writer, method, path.split("?", 1)[0], headers)

        self.background = background
        self.origin: AudioOrigin = background.run(QueryBlindOrigin().start())
        self.port = via(self.origin.port) if via is not None else self.origin.port
        self.base_url = f"http://127.0.0.1:{self.port}/audio/srv"

    def add(self, data: bytes) -> str:
        """Serve `data`; return its SHA-256."""
        import hashlib

        sha256 = hashlib.sha256(data).hexdigest()
        self.background.call(lambda: self.origin.add(f"srv/api/v1/audio/{sha256}", data))
        return sha256

    def requests_for(self, sha256: str) -> list[Any]:
        return [r for r in list(self.origin.requests) if r.path.endswith(sha256)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.background.run(self.origin.close())


@pytest.fixture
def origin(background_loop: BackgroundLoop) -> Iterator[Origin]:
    served = Origin(background_loop)
    yield served
    served.close()


@pytest.fixture
def slow_origin(background_loop: BackgroundLoop, tcp_proxy: Callable[..., TcpProxy]) -> Iterator[Origin]:
    """An origin behind a proxy that sends 200 kB/s: a download of a few hundred kB takes seconds."""
    served = Origin(background_loop, via=lambda port: tcp_proxy("127.0.0.1", port, rate_bps=200_000).port)
    yield served
    served.close()


# ---------------------------------------------------------------------------------------------- database and server


def fleet_csv(cluster_ids: list[str], communes: int = 5) -> str:
    lines = ["cluster_id,province,district,commune,village,lat,lon"]
    for i, cid in enumerate(cluster_ids):
        lines.append(f"{cid},Quảng Ngãi,Bình Sơn,Xã Thử {i % communes},Thôn {i % 7},15.3,108.8")
    return "\n".join(lines) + "\n"


class Seeded:
    """A migrated database with a fleet; `bulletin()` adds an approved bulletin whose audio the origin serves."""

    def __init__(self, database_url: str, cluster_ids: list[str]) -> None:
        from broadcast_server.db.engine import make_engine
        from broadcast_server.db.migrate import upgrade
        from broadcast_server.domain.fleet import parse_fleet_csv
        from broadcast_server.services.fleet_import import import_fleet

        self.database_url = database_url
        self.cluster_ids = cluster_ids
        upgrade(database_url)
        self.engine = make_engine(database_url)
        import_fleet(self.engine, parse_fleet_csv(fleet_csv(cluster_ids)))

    def bulletin(self, origin: Origin, *, size_bytes: int = 20_000, duration_s: float = 2.0) -> tuple[str, str]:
        """(bulletin id, sha256) of a new approved bulletin with fresh random audio."""
        from broadcast_server.db.session import session_scope
        from broadcast_server.models import AudioAsset, Bulletin

        sha256 = origin.add(os.urandom(size_bytes))
        with session_scope(self.engine) as session:
            session.add(
                AudioAsset(id=sha256, size_bytes=size_bytes, duration_s=duration_s, storage_key=f"{sha256}.mp3")
            )
            session.flush()
            bulletin = Bulletin(
                title="Thông báo thử lỗi", text="x", kind="text", audio_asset_id=sha256, status="approved"
            )
            session.add(bulletin)
            session.flush()
            return bulletin.id, sha256

    def broadcast(self, bulletin_id: str, cluster_ids: list[str] | None = None, ttl_s: int = 600) -> dict[str, str]:
        """Create a broadcast (nothing sent yet); return its id and its command id per cluster."""
        from broadcast_server.db.session import session_scope
        from broadcast_server.services.dispatch import Target, create_broadcast

        with session_scope(self.engine) as session:
            broadcast, deliveries = create_broadcast(
                session, bulletin_id, Target(cluster_ids=tuple(cluster_ids or self.cluster_ids)), ttl_s=ttl_s
            )
            return {"broadcast_id": broadcast.id, **{d.cluster_id: d.command_id for d in deliveries}}

    def delivery_states(self, broadcast_id: str) -> dict[str, str]:
        from sqlmodel import Session, select

        from broadcast_server.models import Delivery

        with Session(self.engine) as session:
            return dict(
                session.exec(
                    select(Delivery.cluster_id, Delivery.state).where(Delivery.broadcast_id == broadcast_id)
                ).all()
            )

    def command_ids(self, broadcast_id: str) -> dict[str, str]:
        """Cluster id -> command id of a broadcast's deliveries."""
        from sqlmodel import Session, select

        from broadcast_server.models import Delivery

        with Session(self.engine) as session:
            return dict(
                session.exec(
                    select(Delivery.cluster_id, Delivery.command_id).where(Delivery.broadcast_id == broadcast_id)
                ).all()
            )

    def online(self, cluster_id: str) -> bool:
        from sqlmodel import Session

        from broadcast_server.models import ClusterState

        with Session(self.engine) as session:
            state = session.get(ClusterState, cluster_id)
            return bool(state and state.online)

    def reports_of(self, command_id: str) -> list[tuple[str, str | None, float]]:
        """(status, reason, received at) of each stored report of one command."""
        from sqlmodel import Session, select

        from broadcast_server.models import PlaybackReport

        with Session(self.engine) as session:
            rows = session.exec(
                select(PlaybackReport.status, PlaybackReport.reason, PlaybackReport.received_at).where(
                    PlaybackReport.command_id == command_id
                )
            ).all()
        return [(r[0], r[1], r[2].timestamp()) for r in rows]

    def stored_reports(self) -> dict[str, tuple[str, str, float]]:
        """Every stored report: id -> (command id, status, received at as a Unix time)."""
        from sqlmodel import Session, select

        from broadcast_server.models import PlaybackReport

        with Session(self.engine) as session:
            rows = session.exec(
                select(PlaybackReport.id, PlaybackReport.command_id, PlaybackReport.status, PlaybackReport.received_at)
            ).all()
        return {r[0]: (r[1], r[2], r[3].timestamp()) for r in rows}

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Callable[..., Seeded]]:
    """A factory: `seeded(cluster_ids, database_url=None)`; SQLite in tmp_path unless a URL is given."""
    made: list[Seeded] = []

    def make(cluster_ids: list[str], database_url: str | None = None) -> Seeded:
        db = Seeded(database_url or f"sqlite:///{tmp_path / f'bcast-{len(made)}.sqlite3'}", cluster_ids)
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()


@pytest.fixture
def server_runtime(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory of started in-process servers (`Runtime`: MQTT bus, ingest, schedule pusher, no HTTP)."""
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    started: list[Runtime] = []

    def start(database_url: str, broker: LocalBroker, topic_root: str, public_url: str) -> Runtime:
        settings = get_settings(
            database_url=database_url,
            audio_dir=tmp_path / "audio",
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            topic_root=topic_root,
            mqtt_client_id=f"bcast-server-{uuid.uuid4().hex[:8]}",
            public_url=public_url,
        )
        runtime = Runtime.from_settings(settings)
        runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()
        runtime.engine.dispose()


@pytest.fixture
def topic_root() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------- agent process


FAKE_SPEAKER = """#!/bin/sh
# Stands for the loudspeaker: logs the hash of what it is asked to play (the test's ground truth).
ulimit -f unlimited 2>/dev/null
for last; do :; done
echo "$(date +%s.%N) $(sha256sum "$last" | cut -d' ' -f1)" >> "$BCAST_FAKE_SPEAKER_LOG"
"""


class AgentProcess:
    """`bcast agent` as a device runs it, in a subprocess; its speaker is a script that logs what it plays."""

    def __init__(self, workdir: Path, cluster_id: str, data_dir: Path, broker: LocalBroker, topic_root: str) -> None:
        self.cluster_id = cluster_id
        self.data_dir = data_dir
        bin_dir = workdir / "fake-bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "ffplay").write_text(FAKE_SPEAKER)
        (bin_dir / "ffplay").chmod(0o755)
        self.speaker_log = workdir / f"{cluster_id}-speaker.log"
        self.config = workdir / f"{cluster_id}.toml"
        self.config.write_text(
            "[agent]\n"
            f'cluster_id = "{cluster_id}"\n'
            f'data_dir = "{data_dir}"\n'
            f'mqtt_host = "{broker.host}"\nmqtt_port = {broker.port}\n'
            f'topic_root = "{topic_root}"\n'
            "heartbeat_interval_s = 2\nkeepalive_s = 10\n"
            "download_attempts = 3\ndownload_backoff_s = 0.2\n"
            "cache_min_free_bytes = 0\n"
            'player = "auto"\n'
            "allow_unsigned_commands = true\n"  # the faults here are the box's, not the signatures'
        )
        self.env = dict(
            os.environ,
            PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            BCAST_FAKE_SPEAKER_LOG=str(self.speaker_log),
            PYTHONUNBUFFERED="1",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []
        self.starts = 0

    def start(self) -> AgentProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bcast", "agent", "--config", str(self.config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        process = self.process
        threading.Thread(target=self._drain, args=(process,), daemon=True).start()
        return self

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:  # a pipe nobody reads would stop the agent once full
            self.output.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def power_cut(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed that was not on disk."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, 10)

    def plays(self) -> list[tuple[float, str]]:
        """(Unix time, sha256) of everything the speaker played, in order."""
        if not self.speaker_log.exists():
            return []
        found = []
        for line in self.speaker_log.read_text().splitlines():
            at, _, sha256 = line.partition(" ")
            found.append((float(at), sha256.strip()))
        return found

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output[-lines:])


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """A factory: `agent_process(cluster_id, data_dir, broker, topic_root)`; every agent is stopped afterwards."""
    made: list[AgentProcess] = []

    def make(cluster_id: str, data_dir: Path, broker: LocalBroker, topic_root: str) -> AgentProcess:
        agent = AgentProcess(tmp_path, cluster_id, data_dir, broker, topic_root)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


# ---------------------------------------------------------------------------------------------- waiting


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; a bounded wait, never a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)


async def wait_for_async(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """The same in a coroutine; the predicate runs in a thread (it may query a database)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(interval_s)


@pytest.fixture
def until() -> Callable[..., Any]:
    return wait_for


@pytest.fixture
def until_async() -> Callable[..., Any]:
    return wait_for_async


async def settle_reports(sim: Any, db: Any, timeout_s: float = 30.0) -> None:
    """After the fleet has stopped, wait (bounded, never failing) until every report it made is stored.

    The tests check "every report made is stored" while the prober still pings; a pong answered after that
    check reaches the database a moment after the agents stop, and counting at once called it lost
    (test_database_outage, 2026-12-07). The count after this wait still fails for a report truly lost."""
    made = {r["id"] for r in sim.reports()}
    deadline = time.monotonic() + timeout_s  # a bound on waiting, not a measured duration
    while time.monotonic() < deadline and not made <= set(await asyncio.to_thread(db.stored_reports)):
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------------------- probe


class Prober:
    """Pings one cluster through the server's bus every `every_s` (a pong is a report): after a fault, the
    first report stored shows the whole path works again, whether or not the round's own outcomes were in."""

    def __init__(self, bus: Any, cluster_id: str, every_s: float = 0.25) -> None:
        self.bus = bus
        self.cluster_id = cluster_id
        self.every_s = every_s
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-prober", daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def _run(self) -> None:
        from broadcast_server.db.types import utcnow
        from broadcast_server.services.device_commands import DeviceCommandType, device_command

        while not self._stop.is_set():
            command = device_command(DeviceCommandType.PING, now=utcnow(), ttl_s=120)
            self.sent.append(command["id"])
            with contextlib.suppress(Exception):  # a publish that is not acknowledged in time stays queued
                self.bus.publish_commands([(self.cluster_id, command)], timeout_s=self.every_s)
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def prober() -> Iterator[Callable[..., Prober]]:
    made: list[Prober] = []

    def make(bus: Any, cluster_id: str, every_s: float = 0.25) -> Prober:
        probe = Prober(bus, cluster_id, every_s).start()
        made.append(probe)
        return probe

    yield make
    for probe in made:
        probe.stop()


# ---------------------------------------------------------------------------------------------- servers


class ServerProcess:
    """`python -m bcast server` on a free port; `kill()` is a SIGKILL, `start()` a fresh process."""

    def __init__(self, env: dict[str, str], port: int, log_path) -> None:
        self.env, self.port, self.log_path = env, port, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bcast", "server", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                try:
                    if (await http.get(f"{self.url}/api/v1/health")).json().get("mqtt"):
                        return
                except (httpx.TransportError, ValueError):
                    pass
                assert self.process is not None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {self.log_path.read_text()[-3000:]}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, 20)


@pytest.fixture
def postgres_database(postgres_admin_url):
    """A throwaway PostgreSQL database: (host, port, name), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bcast_rel_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def settle_round(row: FaultRow, db: Seeded, broadcast_id: str, fault_end: float, round_no: int) -> None:
    """Wait (bounded) until every delivery of the broadcast has an outcome; record settle and recover times."""
    from broadcast_server.domain.delivery import TERMINAL

    await wait_for_async(
        lambda: all(s in TERMINAL for s in db.delivery_states(broadcast_id).values()),
        60,
        f"round {round_no}: every delivery has an outcome after the fault",
    )
    row.settle_s.append(time.time() - fault_end)
    after = [at for _, _, at in (await asyncio.to_thread(db.stored_reports)).values() if at >= fault_end]
    row.recover_s.append(min(after) - fault_end if after else row.settle_s[-1])
