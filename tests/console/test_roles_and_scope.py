"""Each role sees what it should; a commune broadcaster sees, targets and approves nothing of another commune."""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast_server.models import Bulletin
from tests.console.conftest import COMMUNE_B, make_bulletin, sign_in

NAV_LINKS = {
    "review": '<a href="/review"',
    "emergency": '<a href="/emergency"',
    "audit": '<a href="/audit"',
}


def nav_of(client) -> set[str]:
    html = client.get("/").text
    return {name for name, link in NAV_LINKS.items() if link in html}


def test_navigation_follows_the_role(client):
    expected = {
        "admin": {"review", "emergency", "audit"},
        "duyet": {"review", "emergency", "audit"},
        "bientap": {"audit"},
        "xa-a": {"audit"},
        "kythuat": {"audit"},
        "xem": {"audit"},
    }
    for username, links in expected.items():
        client.cookies.clear()
        sign_in(client, username)
        assert nav_of(client) == links, username


def test_pages_a_role_may_not_use_answer_403_in_vietnamese(client):
    refused = {
        "xa-a": ["/review", "/emergency", "/schedule/new"],
        "bientap": ["/review", "/emergency"],
        "xem": ["/bulletins/new", "/bulletins/upload", "/review", "/schedule/new", "/emergency"],
        "kythuat": ["/bulletins/new", "/review", "/emergency"],
    }
    for username, paths in refused.items():
        client.cookies.clear()
        sign_in(client, username)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 403, (username, path)
            assert "Không được phép" in response.text and "không có quyền" in response.text, (username, path)


def test_broadcaster_of_commune_a_sees_nothing_of_commune_b(client, runtime, world):
    mine = make_bulletin(runtime, world.commune_a, title="Tin của Tân Khai")
    theirs = make_bulletin(runtime, world.commune_b, title="Tin của An Khương")
    sign_in(client, "xa-a")
    listing = client.get("/bulletins").text
    assert "Tin của Tân Khai" in listing and "Tin của An Khương" not in listing
    assert client.get(f"/bulletins/{mine}").status_code == 200
    page = client.get(f"/bulletins/{theirs}")
    assert page.status_code == 403 and "địa bàn khác" in page.text
    # Targets offered are its own commune only.
    assert COMMUNE_B not in client.get("/bulletins/new").text


def test_broadcaster_cannot_draft_for_approve_or_target_another_commune(client, runtime, world, engine):
    theirs = make_bulletin(runtime, world.commune_b, title="Tin của An Khương")
    csrf = sign_in(client, "xa-a")
    drafted = client.post(
        "/bulletins/new",
        data={
            "csrf_token": csrf,
            "title": "Giả mạo",
            "text": "Nội dung",
            "owner_unit_id": world.commune_b,
            "action": "save",
        },
    )
    assert drafted.status_code == 403
    for path, data in [
        (f"/review/{theirs}/approve", {}),
        (f"/review/{theirs}/return", {"comment": "không"}),
        (f"/bulletins/{theirs}/submit", {}),
        (f"/bulletins/{theirs}/play", {"unit_ids": world.commune_b}),
        ("/emergency/confirm", {"text": "Khẩn", "unit_ids": world.commune_b}),
        (
            "/schedule/new",
            {
                "bulletin_id": theirs,
                "start_date": "2030-01-01",
                "start_time": "07:00",
                "unit_ids": world.commune_b,
                "action": "save",
            },
        ),
    ]:
        response = client.post(path, data={"csrf_token": csrf, **data})
        assert response.status_code == 403, path
    with Session(engine) as session:
        assert [b.title for b in session.exec(select(Bulletin))] == ["Tin của An Khương"]
        assert session.get(Bulletin, theirs).status == "submitted"


def test_approver_of_commune_a_cannot_target_commune_b(client, runtime, world, engine):
    mine = make_bulletin(runtime, world.commune_a, status="approved", title="Tin đã duyệt")
    csrf = sign_in(client, "duyet-a")
    schedule = client.post(
        "/schedule/new",
        data={
            "csrf_token": csrf,
            "bulletin_id": mine,
            "start_date": "2030-01-01",
            "start_time": "07:00",
            "unit_ids": [world.commune_a, world.commune_b],
            "action": "save",
        },
    )
    assert schedule.status_code == 403
    play = client.post(f"/bulletins/{mine}/play", data={"csrf_token": csrf, "unit_ids": world.commune_b})
    assert play.status_code == 403
    emergency = client.post("/emergency/confirm", data={"csrf_token": csrf, "text": "Lũ", "unit_ids": world.commune_b})
    assert emergency.status_code == 403
    from broadcast_server.models import Broadcast, Slot

    with Session(engine) as session:
        assert session.exec(select(Slot)).all() == [] and session.exec(select(Broadcast)).all() == []


def test_a_form_post_without_its_csrf_token_is_refused(client, engine):
    sign_in(client, "xa-a")
    response = client.post("/bulletins/new", data={"title": "Tin", "text": "Nội dung", "action": "save"})
    assert response.status_code == 403 and "Không được phép" in response.text
    wrong = client.post(
        "/bulletins/new", data={"csrf_token": "x" * 40, "title": "Tin", "text": "Nội dung", "action": "save"}
    )
    assert wrong.status_code == 403
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []
