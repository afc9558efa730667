"""Đăng nhập / Đăng xuất: anonymous visitors are sent to sign in, failures are throttled, sign-out ends it."""

from __future__ import annotations

from tests.console.conftest import PASSWORD, csrf_of, sign_in

PAGES = [
    "/",
    "/bulletins",
    "/bulletins/new",
    "/bulletins/upload",
    "/bulletins/some-id",
    "/review",
    "/schedule",
    "/schedule/new",
    "/fleet",
    "/history",
    "/history/some-id",
    "/reports",
    "/reports/quarterly.xlsx?quarter=2026Q1",
    "/emergency",
    "/audit",
]


def test_anonymous_visitor_of_any_page_is_sent_to_sign_in(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_anonymous_form_posts_are_sent_to_sign_in_and_change_nothing(client, engine):
    from sqlmodel import Session, select

    from broadcast_server.models import Bulletin

    response = client.post("/bulletins/new", data={"title": "x", "text": "y", "action": "save"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []


def test_visitor_of_the_root_sees_the_sign_in_page(client):
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert "<h1>Đăng nhập</h1>" in page.text and 'name="password"' in page.text


def test_sign_in_then_out(client):
    response = client.post("/login", data={"username": "xa-a", "password": PASSWORD, "next": "/bulletins"})
    assert response.status_code == 303 and response.headers["location"] == "/bulletins"
    home = client.get("/")
    assert home.status_code == 200 and "XA-A" in home.text and "Phát thanh viên xã" in home.text
    out = client.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_sign_in_goes_only_to_pages_of_this_site(client):
    response = client.post("/login", data={"username": "xa-a", "password": PASSWORD, "next": "//evil.example/x"})
    assert response.headers["location"] == "/"


def test_wrong_password_then_throttled_with_a_vietnamese_message(client):
    for _ in range(5):
        wrong = client.post("/login", data={"username": "xa-a", "password": "sai-mat-khau", "next": "/"})
        assert wrong.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in wrong.text
    locked = client.post("/login", data={"username": "xa-a", "password": PASSWORD, "next": "/"})
    assert locked.status_code == 429
    assert "Đăng nhập sai quá nhiều lần" in locked.text and "phút" in locked.text
    assert client.get("/").status_code == 303  # the right password did not open a session while locked


def test_sign_out_needs_the_csrf_token(client):
    sign_in(client, "xa-a")
    refused = client.post("/logout")
    assert refused.status_code == 403 and "Không được phép" in refused.text
    assert client.get("/").status_code == 200  # still signed in
