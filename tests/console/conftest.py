"""Fixtures of the console tests: two communes of the Hớn Quản sample fleet, an account per role, a client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

HON_QUAN = Path(__file__).resolve().parents[2] / "bcast" / "data" / "hon-quan.csv"
COMMUNE_A = "Thị trấn Tân Khai"
COMMUNE_B = "Xã An Khương"
PASSWORD = "mat-khau-123"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def two_commune_fleet_text() -> str:
    """The header and the rows of the sample file's first two communes."""
    lines = HON_QUAN.read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *(line for line in lines[1:] if f",{COMMUNE_A}," in line or f",{COMMUNE_B}," in line)])


@dataclass(frozen=True)
class World:
    district_id: int
    commune_a: int
    commune_b: int
    clusters_a: list[str]
    clusters_b: list[str]


def build_world(engine) -> World:
    """Import the two communes through the fleet import service and add one account per role."""
    from sqlmodel import select

    from broadcast_server.accounts.service import create_user
    from broadcast_server.db.session import session_scope
    from broadcast_server.domain.fleet import parse_fleet
    from broadcast_server.models import AdminUnit, Cluster
    from broadcast_server.services.fleet_import import import_fleet

    import_fleet(engine, parse_fleet(two_commune_fleet_text()).rows)
    with session_scope(engine) as session:
        ids = {u.name: u.id for u in session.exec(select(AdminUnit))}
        district, a, b = ids["Hớn Quản"], ids[COMMUNE_A], ids[COMMUNE_B]
        accounts = [
            ("admin", "admin", None),
            ("duyet", "approver", district),
            ("duyet-a", "approver", a),  # an approver of commune A only: targets outside it are refused
            ("bientap", "editor", district),
            ("xa-a", "broadcaster", a),
            ("xa-b", "broadcaster", b),
            ("kythuat", "technician", district),
            ("xem", "viewer", district),
        ]
        for username, role, scope in accounts:
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                scope_unit_id=scope,
                display_name=username.upper(),
            )
        units = {u.id: u for u in session.exec(select(AdminUnit))}

        def clusters_of(commune_id: int) -> list[str]:
            return sorted(c.id for c in session.exec(select(Cluster)) if units[c.unit_id].parent_id == commune_id)

        return World(district, a, b, clusters_of(a), clusters_of(b))


@pytest.fixture
def world(engine) -> World:
    return build_world(engine)


@pytest.fixture
def runtime(engine, tmp_path, database_url):
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    settings = get_settings(database_url=database_url, audio_dir=tmp_path / "audio")
    return Runtime.from_settings(settings, engine=engine)


@pytest.fixture
def client(runtime, world):
    from fastapi.testclient import TestClient

    from broadcast_server.api.app import create_app

    with TestClient(create_app(runtime, manage_runtime=False), follow_redirects=False) as test_client:
        yield test_client


def sign_in(client, username: str) -> str:
    """Sign in through the form; return the session's CSRF token read from a page."""
    response = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def make_bulletin(
    runtime,
    owner_unit_id: int,
    *,
    status: str = "submitted",
    priority: str = "normal",
    title: str = "Thông báo",
    text: str = "Kính gửi bà con.",
) -> str:
    """A text bulletin owned by a commune, in the given status (speech made by the real pipeline)."""
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import Bulletin
    from broadcast_server.services.bulletins import create_text_bulletin

    with session_scope(runtime.engine) as session:
        bulletin = create_text_bulletin(
            session, runtime.settings.audio_dir, title=title, text=text, priority=priority, owner_unit_id=owner_unit_id
        )
        row = session.get(Bulletin, bulletin.id)
        row.status = status
        session.add(row)
        return bulletin.id


def set_presence(engine, online: list[str], offline: list[str], *, since: datetime) -> None:
    """Clusters online since `since`, or offline since then for want of heartbeats (with a last error)."""
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import ClusterState, PresenceEvent

    with session_scope(engine) as session:
        for cluster_id in online:
            session.add(
                ClusterState(cluster_id=cluster_id, online=True, changed_at=since, last_seen_at=since, cause="status")
            )
        for cluster_id in offline:
            session.add(
                ClusterState(
                    cluster_id=cluster_id,
                    online=False,
                    changed_at=since,
                    last_seen_at=since,
                    cause="heartbeat_timeout",
                    last_error="amplifier overheated",
                    last_error_at=since,
                )
            )
            session.add(PresenceEvent(cluster_id=cluster_id, online=False, at=since, cause="heartbeat_timeout"))
