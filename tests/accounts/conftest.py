"""Fixtures of the accounts tests: a small tree with two communes, one account per role, an API client.

Tree: Quảng Ngãi / Bình Sơn / {Bình Thạnh, Bình Hải} / villages, two clusters per commune. Accounts (password
``mat-khau-<username>``): an unscoped admin, a district approver and technician, and per commune a
broadcaster and an approver.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLEET_CSV = (
    "cluster_id,province,district,commune,village,lat,lon\n"
    "bt-1,Quảng Ngãi,Bình Sơn,Bình Thạnh,Thôn 1,15.3,108.7\n"
    "bt-2,Quảng Ngãi,Bình Sơn,Bình Thạnh,Thôn 2,15.3,108.7\n"
    "bh-1,Quảng Ngãi,Bình Sơn,Bình Hải,Thôn 1,15.4,108.8\n"
    "bh-2,Quảng Ngãi,Bình Sơn,Bình Hải,Thôn 2,15.4,108.8\n"
)

# username -> (role, unit name or None for the whole tree)
ACCOUNTS = {
    "admin": ("admin", None),
    "duyet-huyen": ("approver", "Bình Sơn"),
    "kythuat-huyen": ("technician", "Bình Sơn"),
    "phatthanh-bt": ("broadcaster", "Bình Thạnh"),
    "duyet-bt": ("approver", "Bình Thạnh"),
    "phatthanh-bh": ("broadcaster", "Bình Hải"),
    "duyet-bh": ("approver", "Bình Hải"),
    "kythuat-bt": ("technician", "Bình Thạnh"),
    "xem-bt": ("viewer", "Bình Thạnh"),
}


def password_of(username: str) -> str:
    return f"mat-khau-{username}"


@dataclass
class World:
    engine: Any
    units: dict[str, int]  # unit name -> id
    users: dict[str, int]  # username -> user id
    tokens: dict[str, str] = field(default_factory=dict)  # username -> plain API token

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def principal(self, username: str):
        from broadcast_server.accounts.service import principal_for_user
        from broadcast_server.db.session import session_scope
        from broadcast_server.models import User

        with session_scope(self.engine) as session:
            return principal_for_user(session, session.get(User, self.users[username]))

    def bulletin(
        self, owner: str | None, status: str = "draft", *, priority: str = "normal", title: str = "Tin"
    ) -> str:
        """A bulletin row owned by a unit, with an audio asset row (no speech synthesis needed)."""
        from broadcast_server.db.session import session_scope
        from broadcast_server.models import AudioAsset, Bulletin

        digest = hashlib.sha256(f"{owner}-{status}-{title}".encode()).hexdigest()
        with session_scope(self.engine) as session:
            if session.get(AudioAsset, digest) is None:
                session.add(AudioAsset(id=digest, size_bytes=1000, duration_s=3.0, storage_key=f"{digest}.mp3"))
                session.flush()
            bulletin = Bulletin(
                title=title,
                text="Nội dung",
                kind="text",
                priority=priority,
                status=status,
                audio_asset_id=digest,
                owner_unit_id=self.units[owner] if owner else None,
            )
            session.add(bulletin)
            session.flush()
            return bulletin.id


@pytest.fixture
def world(engine) -> World:
    from sqlmodel import select

    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.db.session import session_scope
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.models import AdminUnit
    from broadcast_server.services.fleet_import import import_fleet

    import_fleet(engine, parse_fleet(decode_fleet_bytes(FLEET_CSV.encode())).rows)
    world = World(engine=engine, units={}, users={})
    with session_scope(engine) as session:
        for unit in session.exec(select(AdminUnit).where(AdminUnit.level != "village")):
            world.units[unit.name] = unit.id  # type: ignore[assignment]
        for username, (role, unit_name) in ACCOUNTS.items():
            user = create_user(
                session,
                username=username,
                password=password_of(username),
                role=role,
                scope_unit_id=world.units[unit_name] if unit_name else None,
            )
            world.users[username] = user.id  # type: ignore[assignment]
            world.tokens[username], _ = issue_token(session, user.id, name="test")  # type: ignore[arg-type]
    return world


@pytest.fixture(scope="session")
def broker() -> Iterator[Any]:
    """A mosquitto of the tests' own on a free loopback port."""
    from bcast.broker import LocalBroker

    with LocalBroker() as running:
        yield running


@pytest.fixture
def runtime(world: World, database_url: str, tmp_path: Path, broker) -> Iterator[Any]:
    """The server's runtime on the test database with a real MQTT bus (no ingest, no pusher)."""
    from broadcast_server.messaging.mqtt_bus import MqttBus
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    settings = Settings(
        database_url=database_url,
        audio_dir=tmp_path / "audio",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_client_id=f"bcast-test-{tmp_path.name}"[:60],
        topic_root="acct",
    )
    runtime = Runtime.from_settings(settings, engine=world.engine)
    runtime.bus = MqttBus.from_settings(settings)
    runtime.bus.start()
    try:
        yield runtime
    finally:
        runtime.bus.stop()


@pytest.fixture
def app(runtime) -> Any:
    from broadcast_server.api.app import create_app

    return create_app(runtime, manage_runtime=False)


@pytest.fixture
def client(app) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client
