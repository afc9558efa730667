"""Fixtures of the fuzzing tests: a served world (fleet, admin token, approved bulletin, real broker).

The world is what generated requests need to reach real code paths instead of stopping at 401 or 404:
two communes of the Hớn Quản sample fleet imported through the fleet import service, an administrator
with an API token and a console password, an approved text bulletin (speech made by the real pipeline),
the broker's password and ACL files, and a runtime whose MQTT bus is connected to a Mosquitto of its own
on a free loopback port (so broadcast and device-command routes do real work instead of answering 503).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HON_QUAN = Path(__file__).resolve().parents[2] / "bcast" / "data" / "hon-quan.csv"
COMMUNES = ("Thị trấn Tân Khai", "Xã An Khương")
ADMIN = "quantri"
PASSWORD = "mat-khau-quan-tri"


def small_fleet_text() -> str:
    """The header and the rows of two communes of the sample fleet file."""
    lines = HON_QUAN.read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *(line for line in lines[1:] if any(f",{c}," in line for c in COMMUNES))])


@dataclass
class FuzzWorld:
    """A migrated database with a fleet, an administrator and an approved bulletin, and its runtime."""

    database_url: str
    audio_dir: Path
    runtime: Any
    token: str
    token_id: int
    bulletin_id: str
    cluster_ids: list[str]
    commune_ids: list[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def app(self):
        from broadcast_server.api.app import create_app

        return create_app(self.runtime, manage_runtime=False)


def build_world(base: Path, database_url: str, *, mqtt_port: int | None = None) -> FuzzWorld:
    """Migrate, import the fleet, add the administrator, its token, an approved bulletin; bus on `mqtt_port`."""
    from sqlmodel import select

    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.domain.fleet import parse_fleet
    from broadcast_server.models import AdminUnit, Bulletin, Cluster
    from broadcast_server.runtime import Runtime
    from broadcast_server.services.bulletins import create_text_bulletin
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.settings import get_settings

    upgrade(database_url)
    engine = make_engine(database_url)
    import_fleet(engine, parse_fleet(small_fleet_text()).rows)
    settings = get_settings(
        database_url=database_url,
        audio_dir=base / "audio",
        signing_key_file=base / "signing-keys.json",
        broker_password_file=base / "broker" / "passwords",
        broker_acl_file=base / "broker" / "acl",
        mqtt_port=mqtt_port,
        mqtt_client_id=f"fuzz-{secrets.token_hex(4)}",
        topic_root=f"fuzz{secrets.token_hex(4)}",
    )
    with session_scope(engine) as session:
        admin = create_user(session, username=ADMIN, password=PASSWORD, role="admin", display_name="Quản trị")
        token, token_row = issue_token(session, admin.id, name="fuzz")
        token_id = token_row.id
        communes = [u.id for u in session.exec(select(AdminUnit).where(AdminUnit.name.in_(COMMUNES)))]  # type: ignore[attr-defined]
        clusters = sorted(c.id for c in session.exec(select(Cluster)))
        bulletin = create_text_bulletin(
            session, settings.audio_dir, title="Thông báo", text="Kính gửi bà con.", owner_unit_id=communes[0]
        )
        row = session.get(Bulletin, bulletin.id)
        row.status = "approved"
        session.add(row)
        bulletin_id = bulletin.id
    runtime = Runtime.from_settings(settings, engine=engine)
    if mqtt_port is not None:
        runtime.push_poll_s = 0.2
        runtime.start()
    return FuzzWorld(
        database_url, settings.audio_dir, runtime, token, token_id, bulletin_id, clusters, sorted(communes)
    )


@pytest.fixture(scope="module")
def fuzz_broker() -> Iterator[Any]:
    """A Mosquitto of this module's own on a free loopback port."""
    from bcast.broker import LocalBroker

    broker = LocalBroker().start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def served_world(tmp_path_factory: pytest.TempPathFactory, fuzz_broker) -> Iterator[FuzzWorld]:
    """One world for a whole module on SQLite, its runtime started (bus, ingest, schedule pusher)."""
    base = tmp_path_factory.mktemp("fuzz-world")
    world = build_world(base, f"sqlite:///{base / 'bcast.sqlite3'}", mqtt_port=fuzz_broker.port)
    try:
        yield world
    finally:
        world.runtime.stop()
        world.runtime.engine.dispose()


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[FuzzWorld]:
    """A world per test on each database backend, without a bus (uploads need none)."""
    world = build_world(tmp_path, database_url)
    try:
        yield world
    finally:
        world.runtime.engine.dispose()
