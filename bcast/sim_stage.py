"""The stage the accelerated demos share: a fleet in a fresh database, then agents and server on one clock."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bcast.broker import LocalBroker
from bcast.demo import ServerThread, admin_headers, listening_socket


@dataclass
class Stage:
    settings: Any  # broadcast_server.settings.Settings
    engine: Any  # sqlalchemy Engine
    rows: list[Any]  # FleetRow, repeated ids renamed
    communes: dict[str, str]  # cluster id -> commune (or district where there is no commune level)
    offline: set[str]
    http_port: int
    http_socket: socket.socket  # listening since prepare(), so nothing else takes the port meanwhile
    api_headers: dict[str, str]  # an administrator's API token, for the demo's own API calls
    runtime: Any = None
    sim: Any = None

    @property
    def online(self) -> list[str]:
        return sorted(c for c in self.communes if c not in self.offline)


def prepare(
    fleet: Path,
    workdir: Path,
    broker: LocalBroker,
    stack: contextlib.ExitStack,
    *,
    offline_fraction: float,
    seed: int,
    **settings: Any,
) -> Stage:
    """Settings on loopback, the fleet imported into a fresh SQLite database, the offline clusters chosen."""
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.settings import get_settings
    from firmware_sim.scenario import pick_offline

    http_socket = listening_socket()
    http_port = http_socket.getsockname()[1]
    config = get_settings(
        database_url=f"sqlite:///{workdir / 'bcast.sqlite3'}",
        audio_dir=workdir / "audio",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        public_url=f"http://127.0.0.1:{http_port}",
        signing_key_file=workdir / "signing-keys.json",
        **settings,
    )
    rows = parse_fleet(decode_fleet_bytes(Path(fleet).read_bytes()), rename_duplicates=True).rows
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    stack.callback(engine.dispose)
    import_fleet(engine, rows)
    return Stage(
        settings=config,
        engine=engine,
        rows=rows,
        communes={r.cluster_id: r.commune or r.district for r in rows},
        offline=pick_offline([r.cluster_id for r in rows], offline_fraction, seed),
        http_port=http_port,
        http_socket=http_socket,
        api_headers=admin_headers(engine),
    )


async def start(
    stage: Stage,
    workdir: Path,
    broker: LocalBroker,
    stack: contextlib.ExitStack,
    clock: Any,
    *,
    seed: int,
    push_poll_s: float | None = None,
) -> None:
    """Agents first (the broker then keeps their sessions for what the server sends), then the server."""
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.signing.keyring import load_or_create_keyring
    from firmware_sim.fleet_sim import FleetSimulation

    stage.runtime = Runtime.from_settings(stage.settings, engine=stage.engine)
    stage.runtime.clock = clock
    if push_poll_s is not None:
        stage.runtime.push_poll_s = push_poll_s
    stage.sim = FleetSimulation(
        [r.cluster_id for r in stage.rows],
        data_root=workdir / "agents",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        topic_root=stage.settings.topic_root,
        offline=stage.offline,
        seed=seed,
        communes=stage.communes,
        clock=clock,
        heartbeat_interval_s=30.0,
        trusted_keys=load_or_create_keyring(stage.settings.signing_key_file).trusted_public_keys,  # signed only
    )
    await stage.sim.start(connect_timeout_s=60)
    server = ServerThread(create_app(stage.runtime), stage.http_socket)
    await asyncio.to_thread(server.start)  # the agents' loop keeps running while the server starts
    stack.callback(server.stop)


async def drain(stage: Stage) -> None:
    """Let the last reports reach the server and be stored (bounded: about twenty real seconds)."""
    for _ in range(100):
        if all(len(c.agent.outbox) == 0 for c in stage.sim.clusters.values() if c.online):
            break
        await asyncio.sleep(0.05)
    if stage.runtime.ingest is not None:
        stage.runtime.ingest.wait_idle(15)
