"""The demo: broker, server and a simulated fleet on this machine; one TTS bulletin to every cluster.

Everything runs on loopback and in a temporary folder (or `keep`), and everything started is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from bcast.broker import LocalBroker

log = logging.getLogger(__name__)

DEMO_TEXT = (
    "Đài truyền thanh xã xin thông báo: Ủy ban nhân dân huyện triển khai chuyển đổi số, "
    "bà con đến nhà văn hóa thôn để được hướng dẫn cài đặt ứng dụng dịch vụ công trực tuyến."
)


class DemoError(RuntimeError):
    """The demo could not finish; the message says which step failed."""


def admin_headers(engine: Any, username: str = "demo-admin") -> dict[str, str]:
    """HTTP headers of an unscoped administrator's new API token in this database (the account made if missing).

    For the demos and tests that drive the API: every /api/v1 route but health and audio needs an account.
    """
    import secrets

    from sqlmodel import select

    from broadcast_server.accounts.principal import Role
    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import User

    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            user = create_user(session, username=username, password=secrets.token_urlsafe(24), role=Role.ADMIN)
        plain, _ = issue_token(session, user.id, name="demo")
    return {"Authorization": f"Bearer {plain}"}


@dataclass
class DemoResult:
    clusters: int
    communes: list[dict[str, Any]]
    seconds: float
    broker: str
    offline: int = 0
    renamed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    with_offline: bool = False

    def as_json(self) -> dict[str, Any]:
        """The demo's JSON; with an offline fraction, "offline" per commune and in total as the server saw it."""
        keys = ("name", "clusters", "played", "offline") if self.with_offline else ("name", "clusters", "played")
        document: dict[str, Any] = {
            "clusters": self.clusters,
            "communes": [{k: c[k] for k in keys} for c in self.communes],
            "seconds": round(self.seconds, 2),
        }
        if self.with_offline:
            document["offline"] = self.offline
        return document


def default_fleet() -> Path:
    return Path(str(resources.files("bcast").joinpath("data/hon-quan.csv")))


def listening_socket() -> socket.socket:
    """A loopback TCP socket bound and listening now, so its port cannot be taken before the server starts
    (a port picked and released first could go to one of the simulated agents' outgoing connections)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return sock


class ServerThread:
    """uvicorn in a thread of this process, serving on an already listening loopback socket."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="bcast-http", daemon=True
        )

    def start(self, timeout_s: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DemoError("the HTTP server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def run_demo(
    fleet: Path | None = None,
    *,
    keep: Path | None = None,
    timeout_s: float = 80.0,
    speed: float = 25.0,
    progress: Callable[[int, int], None] | None = None,
    broker: LocalBroker | None = None,
    offline_fraction: float | None = None,
    seed: int = 0,
) -> DemoResult:
    """Run the whole path once and return the per-commune coverage the server computed.

    A running `broker` may be passed in (tests watch its traffic); otherwise one is started and stopped.
    With `offline_fraction`, that share of clusters (chosen from `seed`) never connects.
    """
    fleet = fleet or default_fleet()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if keep is not None:
            workdir = Path(keep)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bcast-demo-")))
        if broker is None:
            broker = stack.enter_context(LocalBroker())
        result = asyncio.run(
            _run(fleet, workdir, broker, timeout_s, speed, progress, stack, offline_fraction or 0.0, seed)
        )
        result.with_offline = offline_fraction is not None
    result.seconds = time.monotonic() - started
    return result


async def _run(
    fleet: Path,
    workdir: Path,
    broker: LocalBroker,
    timeout_s: float,
    speed: float,
    progress: Callable[[int, int], None] | None,
    stack: contextlib.ExitStack,
    offline_fraction: float,
    seed: int,
) -> DemoResult:
    from broadcast_server.api.app import create_app
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.runtime import Runtime
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.settings import get_settings
    from broadcast_server.signing.keyring import load_or_create_keyring
    from firmware_sim.fleet_sim import FleetSimulation
    from firmware_sim.scenario import pick_offline

    http_socket = listening_socket()
    http_port = http_socket.getsockname()[1]
    settings = get_settings(
        database_url=f"sqlite:///{workdir / 'bcast.sqlite3'}",
        audio_dir=workdir / "audio",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        public_url=f"http://127.0.0.1:{http_port}",
        signing_key_file=workdir / "signing-keys.json",
    )
    fleet_file = parse_fleet(decode_fleet_bytes(Path(fleet).read_bytes()), rename_duplicates=True)
    rows = fleet_file.rows
    offline = pick_offline([r.cluster_id for r in rows], offline_fraction, seed)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    stack.callback(engine.dispose)
    import_fleet(engine, rows)

    runtime = Runtime.from_settings(settings, engine=engine)
    server = ServerThread(create_app(runtime), http_socket)
    server.start()
    stack.callback(server.stop)

    sim = FleetSimulation(
        [r.cluster_id for r in rows],
        data_root=workdir / "agents",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        speed=speed,
        topic_root=settings.topic_root,
        offline=offline,
        seed=seed,
        trusted_keys=load_or_create_keyring(settings.signing_key_file).trusted_public_keys,  # signed commands only
    )
    try:
        await sim.start(connect_timeout_s=timeout_s / 2)
        async with httpx.AsyncClient(base_url=settings.public_url, timeout=60, headers=admin_headers(engine)) as api:
            bulletin = api_ok(
                await api.post(
                    "/api/v1/bulletins",
                    json={"title": "Thông báo chuyển đổi số", "text": DEMO_TEXT, "category": "Chuyển đổi số"},
                )
            )
            api_ok(await api.post(f"/api/v1/bulletins/{bulletin['id']}/submit"))
            api_ok(await api.post(f"/api/v1/bulletins/{bulletin['id']}/approve"))
            districts = api_ok(await api.get("/api/v1/units", params={"level": "district"}))
            broadcast = api_ok(
                await api.post(
                    "/api/v1/broadcasts",
                    json={"bulletin_id": bulletin["id"], "target": {"unit_ids": [d["id"] for d in districts]}},
                )
            )
            # Offline clusters never answer; wait for the others (the demo knows which it cut off).
            expected = broadcast["targeted"] - len(offline)
            coverage = await _wait_for_outcomes(api, broadcast["id"], expected, timeout_s, progress)
    finally:
        await sim.stop()
    if runtime.ingest is not None:
        runtime.ingest.wait_idle(5)
    communes = [
        {"name": r["name"], "clusters": r["clusters"], "played": r["played"], "offline": r["offline"]}
        for r in coverage["communes"]
    ]
    return DemoResult(
        clusters=len(rows),
        communes=communes,
        seconds=0.0,
        broker=broker.kind or "?",
        offline=coverage["total"]["offline"],
        renamed=[str(r) for r in fleet_file.renamed],
        extra={"broadcast_id": broadcast["id"], "states": coverage["states"], "ground_truth": sim.summary()},
    )


async def _wait_for_outcomes(
    api: httpx.AsyncClient,
    broadcast_id: str,
    targeted: int,
    timeout_s: float,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        coverage = api_ok(await api.get(f"/api/v1/broadcasts/{broadcast_id}/coverage"))
        states = coverage["states"]
        done = sum(n for s, n in states.items() if s not in ("queued", "sent"))
        if progress:
            progress(done, targeted)
        if done >= targeted or time.monotonic() > deadline:
            return coverage
        await asyncio.sleep(0.25)


def api_ok(response: httpx.Response) -> Any:
    if response.is_error:
        raise DemoError(
            f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} {response.text[:300]}"
        )
    return response.json()
