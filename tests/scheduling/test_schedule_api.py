"""The schedule through the API, read-only: the stored schedule as a file, and one cluster's preview."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.scheduling.schedule_file import parse_schedule_yaml

MONDAY = {"start": "2026-11-23T00:00:00+07:00", "end": "2026-11-24T00:00:00+07:00"}


@pytest.fixture
def api(world, database_url):
    from fastapi.testclient import TestClient

    from bcast.demo import admin_headers
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    runtime = Runtime.from_settings(Settings(database_url=database_url), engine=world)
    with TestClient(create_app(runtime, manage_runtime=False), headers=admin_headers(world)) as client:
        yield client


def preview_url(cluster_id: str, **times: str) -> str:
    return "/api/v1/schedules/preview?" + urlencode({"cluster_id": cluster_id, **(times or MONDAY)})


def test_the_stored_schedule_comes_back_as_a_schedule_file(api, example_week) -> None:
    response = api.get("/api/v1/schedules")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    exported = parse_schedule_yaml(response.text)
    original = parse_schedule_yaml(example_week)
    assert {s.id for s in exported.slots} == {s.id for s in original.slots}
    assert {p.id for p in exported.programmes} == {p.id for p in original.programmes}


def test_a_coastal_clusters_monday(api, clusters_of) -> None:
    cluster_id = clusters_of("Xã Bình Hải")[0]
    plays = api.get(preview_url(cluster_id)).json()
    assert [p["airing_id"] for p in plays] == [
        "sang-hang-ngay@20261122T2230Z#0",  # 05:30 local: the priority notice first
        "sang-hang-ngay@20261122T2230Z#1",
        "sang-hang-ngay@20261122T2230Z#2",
        "thoi-tiet-ngay-thuong@20261123T0400Z#0",  # 11:00, coastal communes only
        "chieu-hang-ngay@20261123T1000Z#0",  # 17:00
        "chieu-hang-ngay@20261123T1000Z#1",
        "chuyen-doi-so-thu-hai@20261123T1015Z#0",  # 17:15, Mondays
    ]
    first = plays[0]
    assert (first["title"], first["due_at"]) == ("Thông báo của UBND huyện", "2026-11-22T22:30:00Z")
    assert all(p["end_at"] > p["start_at"] >= p["due_at"] for p in plays)
    inland = clusters_of("Xã Bình Trung")[0]
    assert "thoi-tiet-ngay-thuong" not in {p["slot_id"] for p in api.get(preview_url(inland)).json()}


@pytest.mark.parametrize(
    ("times", "status"),
    [
        ({"start": "2026-11-23T00:00:00", "end": "2026-11-24T00:00:00"}, 422),  # no time zone
        ({"start": "2026-11-24T00:00:00+07:00", "end": "2026-11-23T00:00:00+07:00"}, 422),  # backwards
        ({"start": "2026-11-01T00:00:00+07:00", "end": "2026-12-15T00:00:00+07:00"}, 422),  # 44 days
        ({"start": "yesterday", "end": "2026-11-24T00:00:00+07:00"}, 422),
    ],
)
def test_bad_times_are_refused(api, clusters_of, times, status) -> None:
    response = api.get(preview_url(clusters_of("Xã Bình Hải")[0], **times))
    assert response.status_code == status, response.text


def test_unknown_and_out_of_scope_clusters(api, world, clusters_of) -> None:
    from broadcast_server.accounts.principal import Role
    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.models import AdminUnit

    assert api.get(preview_url("khong-co-cum-nay")).status_code == 404
    with session_scope(world) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        user = create_user(
            session, username="xa-hai", password="mat-khau-dai-du-16", role=Role.VIEWER, scope_unit_id=hai
        )
        token, _ = issue_token(session, user.id, name="api")
    mine = {"Authorization": f"Bearer {token}"}
    assert api.get(preview_url(clusters_of("Xã Bình Hải")[0]), headers=mine).status_code == 200
    assert api.get(preview_url(clusters_of("Xã Bình Châu")[0]), headers=mine).status_code == 403
    api.headers.pop("Authorization")
    assert api.get("/api/v1/schedules").status_code == 401
