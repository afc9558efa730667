"""Enforcement through the API: 401 for anonymous callers on every route, 403 for roles and other communes,
CSRF for cookie sessions, tokens and accounts routes, device commands on a real broker."""

from __future__ import annotations

import json
import re
import threading

import pytest
from fastapi.routing import iter_route_contexts
from sqlmodel import Session, select

from broadcast_server.accounts.sessions import SESSION_COOKIE, open_session
from broadcast_server.db.session import session_scope
from broadcast_server.models import AuditEntry, Bulletin, Cluster, User

from .conftest import password_of

# Routes open to anonymous callers, on purpose. Adding one here is a decision, not a convenience.
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/audio/{sha256}"),  # agents download audio; issue 8 will authorise them
    ("POST", "/api/v1/auth/token"),  # the sign-in itself (throttled)
    ("POST", "/api/v1/enrol"),  # issue 8: a cluster proves itself with a one-time enrolment token
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
}


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, routers included at any depth."""
    found = []
    for route in iter_route_contexts(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def _api_routes(app) -> list[tuple[str, str]]:
    return [(method, path) for method, path in _routes(app) if path.startswith("/api/v1")]


def test_anonymous_callers_get_401_on_every_api_route(app, client) -> None:
    routes = _api_routes(app)
    assert {r for r in routes if r in PUBLIC} == PUBLIC
    guarded = [r for r in routes if r not in PUBLIC]
    assert len(guarded) >= 20 and any(method == "POST" for method, _ in guarded)
    for method, path in guarded:
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method, url, json={})
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        # A wrong or revoked token is no better than none.
        response = client.request(method, url, json={}, headers={"Authorization": "Bearer bct_forged"})
        assert response.status_code == 401, (method, path)


def test_every_write_route_checks_a_permission(app, client, world) -> None:
    """A viewer may read but not write: every POST, PUT, PATCH and DELETE refuses it (403), except its own tokens."""
    own = {("POST", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/{token_id}")}
    for method, path in _api_routes(app):
        if method in {"GET"} or (method, path) in PUBLIC or (method, path) in own:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method, url, json={}, headers=world.headers("xem-bt"))
        assert response.status_code == 403, (method, path, response.status_code, response.text)


def test_no_route_changes_the_audit_log(app) -> None:
    audit = [(method, path) for method, path in _routes(app) if "audit" in path.lower()]
    assert ("GET", "/api/v1/audit") in audit
    assert all(method == "GET" for method, _ in audit), audit


def test_commune_broadcaster_cannot_see_another_communes_bulletin(client, world) -> None:
    theirs = world.bulletin("Bình Hải", title="Tin Bình Hải")
    mine = world.bulletin("Bình Thạnh", title="Tin Bình Thạnh")
    district = world.bulletin("Bình Sơn", title="Tin huyện")
    me = world.headers("phatthanh-bt")
    refused = client.get(f"/api/v1/bulletins/{theirs}", headers=me)
    assert refused.status_code == 403 and "outside your scope" in refused.json()["detail"]
    assert client.get(f"/api/v1/bulletins/{mine}", headers=me).status_code == 200
    assert client.get(f"/api/v1/bulletins/{district}", headers=me).status_code == 403
    assert [b["id"] for b in client.get("/api/v1/bulletins", headers=me).json()] == [mine]
    listed = {b["id"] for b in client.get("/api/v1/bulletins", headers=world.headers("duyet-huyen")).json()}
    assert listed == {theirs, mine, district}
    assert client.get(f"/api/v1/bulletins/{theirs}", headers=world.headers("admin")).status_code == 200
    # Submitting another commune's draft is refused too.
    assert client.post(f"/api/v1/bulletins/{theirs}/submit", headers=me).status_code == 403


def test_broadcaster_can_never_approve_even_its_own(client, world) -> None:
    mine = world.bulletin("Bình Thạnh")
    me = world.headers("phatthanh-bt")
    assert client.post(f"/api/v1/bulletins/{mine}/submit", headers=me).json()["status"] == "submitted"
    refused = client.post(f"/api/v1/bulletins/{mine}/approve", headers=me)
    assert refused.status_code == 403 and "broadcaster" in refused.json()["detail"]
    refused = client.post(f"/api/v1/bulletins/{mine}/return", json={"comment": "tự trả"}, headers=me)
    assert refused.status_code == 403
    with Session(world.engine) as session:
        assert session.get(Bulletin, mine).status == "submitted"  # type: ignore[union-attr]


def test_commune_approver_cannot_approve_another_communes_bulletin(client, world) -> None:
    theirs = world.bulletin("Bình Hải", "submitted")
    refused = client.post(f"/api/v1/bulletins/{theirs}/approve", headers=world.headers("duyet-bt"))
    assert refused.status_code == 403
    refused = client.post(
        f"/api/v1/bulletins/{theirs}/return", json={"comment": "không"}, headers=world.headers("duyet-bt")
    )
    assert refused.status_code == 403
    approved = client.post(f"/api/v1/bulletins/{theirs}/approve", headers=world.headers("duyet-huyen"))
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["reviewed_by"] == world.users["duyet-huyen"]


def test_broadcast_targets_must_lie_in_scope(client, world) -> None:
    mine = world.bulletin("Bình Thạnh", "approved")
    me = world.headers("duyet-bt")
    refused = client.post(
        "/api/v1/broadcasts", json={"bulletin_id": mine, "target": {"unit_ids": [world.units["Bình Hải"]]}}, headers=me
    )
    assert refused.status_code == 403
    assert f"unit {world.units['Bình Hải']}" in refused.json()["detail"] and "Bình Hải" in refused.json()["detail"]
    refused = client.post(
        "/api/v1/broadcasts",
        json={"bulletin_id": mine, "target": {"unit_ids": [world.units["Bình Thạnh"]], "cluster_ids": ["bh-1"]}},
        headers=me,
    )
    assert refused.status_code == 403 and "bh-1" in refused.json()["detail"]
    # A whole district is beyond a commune too.
    refused = client.post(
        "/api/v1/broadcasts", json={"bulletin_id": mine, "target": {"unit_ids": [world.units["Bình Sơn"]]}}, headers=me
    )
    assert refused.status_code == 403
    created = client.post(
        "/api/v1/broadcasts",
        json={"bulletin_id": mine, "target": {"unit_ids": [world.units["Bình Thạnh"]]}},
        headers=me,
    )
    assert created.status_code == 201, created.text
    broadcast = created.json()
    assert broadcast["targeted"] == 2
    # The broadcast is the commune's: its people see it, the other commune does not.
    assert client.get(f"/api/v1/broadcasts/{broadcast['id']}", headers=world.headers("phatthanh-bt")).status_code == 200
    for path in (f"/api/v1/broadcasts/{broadcast['id']}", f"/api/v1/broadcasts/{broadcast['id']}/coverage"):
        assert client.get(path, headers=world.headers("phatthanh-bh")).status_code == 403
    assert (
        client.get(f"/api/v1/statistics/broadcasts/{broadcast['id']}", headers=world.headers("duyet-bh")).status_code
        == 403
    )
    # Broadcasters cannot broadcast at all, even in their commune.
    refused = client.post(
        "/api/v1/broadcasts",
        json={"bulletin_id": mine, "target": {"unit_ids": [world.units["Bình Thạnh"]]}},
        headers=world.headers("phatthanh-bt"),
    )
    assert refused.status_code == 403
    # Stopping it: the same rule (who may broadcast there); another commune's approver may not.
    stop = f"/api/v1/broadcasts/{broadcast['id']}/stop"
    for outsider in ("duyet-bh", "phatthanh-bt", "kythuat-bt"):
        assert client.post(stop, headers=world.headers(outsider)).status_code == 403, outsider
    assert client.post("/api/v1/broadcasts/no-such/stop", headers=me).status_code == 404
    stopped = client.post(stop, headers=me)
    assert stopped.status_code == 202, stopped.text
    assert stopped.json()["told"] == 2  # both clusters, whether their play went out yet or not
    after = client.get(f"/api/v1/broadcasts/{broadcast['id']}", headers=me).json()
    assert after["states"].get("queued", 0) == 0
    with Session(world.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.create")).one()
        assert (entry.actor, entry.via, entry.unit_id, entry.object_id) == (
            "duyet-bt",
            "token",
            world.units["Bình Thạnh"],
            broadcast["id"],
        )


def test_lists_of_units_clusters_and_fleet_are_scoped(client, world) -> None:
    me = world.headers("phatthanh-bt")
    assert sorted(c["id"] for c in client.get("/api/v1/clusters", headers=me).json()) == ["bt-1", "bt-2"]
    names = {u["name"] for u in client.get("/api/v1/units", headers=me).json()}
    assert "Bình Thạnh" in names and "Bình Hải" not in names and "Bình Sơn" not in names
    status = client.get("/api/v1/fleet/status", headers=me).json()
    assert [c["unit_id"] for c in status["communes"]] == [world.units["Bình Thạnh"]]
    assert status["clusters"] == 2
    uptime = client.get("/api/v1/fleet/uptime", headers=me).json()
    assert sorted(r["cluster_id"] for r in uptime) == ["bt-1", "bt-2"]
    everything = client.get("/api/v1/clusters", headers=world.headers("admin")).json()
    assert len(everything) == 4


def test_csrf_is_required_for_cookie_writes(app, world) -> None:
    from fastapi.testclient import TestClient

    bulletin = world.bulletin("Bình Thạnh")
    with session_scope(world.engine) as session:
        cookie, csrf = open_session(session, world.principal("phatthanh-bt"), ip="testclient")
    with TestClient(app, cookies={SESSION_COOKIE: cookie}) as browser:
        assert browser.get(f"/api/v1/bulletins/{bulletin}").status_code == 200  # reads need no token
        refused = browser.post(f"/api/v1/bulletins/{bulletin}/submit")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        refused = browser.post(f"/api/v1/bulletins/{bulletin}/submit", headers={"X-CSRF-Token": "wrong"})
        assert refused.status_code == 403
        with Session(world.engine) as session:
            assert session.get(Bulletin, bulletin).status == "draft"  # type: ignore[union-attr]
        ok = browser.post(f"/api/v1/bulletins/{bulletin}/submit", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["status"] == "submitted"
        # A form field works as well (console forms), and the route can still read its own form.
        other = world.bulletin("Bình Thạnh", title="Tin khác")
        ok = browser.post(f"/api/v1/bulletins/{other}/submit", data={"csrf_token": csrf})
        assert ok.status_code == 200
        # Closing the session ends it.
        from broadcast_server.accounts.sessions import close_session

        with session_scope(world.engine) as session:
            close_session(session, cookie)
        assert browser.get(f"/api/v1/bulletins/{bulletin}").status_code == 401
    # Bearer tokens need no CSRF token: browsers never send them by themselves.
    with TestClient(app) as api:
        third = world.bulletin("Bình Thạnh", title="Tin thứ ba")
        assert api.post(f"/api/v1/bulletins/{third}/submit", headers=world.headers("phatthanh-bt")).status_code == 200


def test_session_cookie_flags() -> None:
    from fastapi import Response

    from broadcast_server.api.auth import set_session_cookie
    from broadcast_server.settings import Settings

    response = Response()
    set_session_cookie(response, "value", Settings(cookie_secure=False, session_lifetime_s=60))
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" not in header and "max-age=60" in header
    response = Response()
    set_session_cookie(response, "value", Settings(cookie_secure=True))
    assert "secure" in response.headers["set-cookie"].lower()


def test_token_route_signs_in_and_throttles(client, world) -> None:
    issued = client.post(
        "/api/v1/auth/token", json={"username": "duyet-bt", "password": password_of("duyet-bt"), "name": "cổng"}
    )
    assert issued.status_code == 201
    token = issued.json()["token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["username"], me["role"], me["via"], me["scope_unit_id"]) == (
        "duyet-bt",
        "approver",
        "token",
        world.units["Bình Thạnh"],
    )
    assert "approve_bulletin" in me["permissions"] and "manage_accounts" not in me["permissions"]
    for _ in range(5):
        wrong = client.post("/api/v1/auth/token", json={"username": "duyet-bh", "password": "sai mật khẩu"})
        assert wrong.status_code == 401
    locked = client.post("/api/v1/auth/token", json={"username": "duyet-bh", "password": password_of("duyet-bh")})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


def test_tokens_routes_own_and_admin_scope(client, world) -> None:
    mine = client.post("/api/v1/tokens", json={"name": "điện thoại"}, headers=world.headers("phatthanh-bt"))
    assert mine.status_code == 201 and mine.json()["token"].startswith("bct_")
    listed = client.get("/api/v1/tokens", headers=world.headers("phatthanh-bt")).json()
    assert {t["username"] for t in listed} == {"phatthanh-bt"} and "token" not in listed[0]
    # Not someone else's, even in the same commune.
    refused = client.post(
        "/api/v1/tokens", json={"name": "x", "user_id": world.users["duyet-bt"]}, headers=world.headers("phatthanh-bt")
    )
    assert refused.status_code == 403
    other_id = next(t["id"] for t in client.get("/api/v1/tokens", headers=world.headers("duyet-bh")).json())
    assert client.delete(f"/api/v1/tokens/{other_id}", headers=world.headers("phatthanh-bt")).status_code == 403
    # The administrator sees every account's tokens and revokes one; it stops working at once.
    assert len(client.get("/api/v1/tokens", headers=world.headers("admin")).json()) == len(world.tokens) + 1
    revoked = client.delete(f"/api/v1/tokens/{mine.json()['id']}", headers=world.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    headers = {"Authorization": f"Bearer {mine.json()['token']}"}
    assert client.get("/api/v1/bulletins", headers=headers).status_code == 401
    with Session(world.engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions.count("token.issue") == 1 and actions.count("token.revoke") == 1


def test_users_route_stays_inside_the_admins_scope(client, world) -> None:
    with session_scope(world.engine) as session:
        from broadcast_server.accounts.service import create_user, issue_token

        admin = create_user(
            session,
            username="quantri-huyen",
            password="mat-khau-qth",
            role="admin",
            scope_unit_id=world.units["Bình Sơn"],
        )
        plain, _ = issue_token(session, admin.id, name="t")  # type: ignore[arg-type]
    district_admin = {"Authorization": f"Bearer {plain}"}
    body = {"username": "phatthanh-moi", "password": "mat-khau-moi", "role": "broadcaster"}
    created = client.post(
        "/api/v1/users", json=body | {"scope_unit_id": world.units["Bình Hải"]}, headers=district_admin
    )
    assert created.status_code == 201 and created.json()["scope_unit_id"] == world.units["Bình Hải"]
    assert "password" not in json.dumps(created.json())
    # Above itself: the province, or the whole tree, is refused.
    above = client.post(
        "/api/v1/users",
        json=body | {"username": "tinh", "scope_unit_id": world.units["Quảng Ngãi"]},
        headers=district_admin,
    )
    assert above.status_code == 403
    default = client.post(
        "/api/v1/users", json=body | {"username": "mac-dinh", "role": "admin"}, headers=district_admin
    )
    assert default.status_code == 201 and default.json()["scope_unit_id"] == world.units["Bình Sơn"]
    assert (
        client.post("/api/v1/users", json=body | {"username": "x1"}, headers=world.headers("duyet-huyen")).status_code
        == 403
    )
    duplicate = client.post("/api/v1/users", json=body, headers=district_admin)
    assert duplicate.status_code == 422
    names = {u["username"] for u in client.get("/api/v1/users", headers=district_admin).json()}
    assert "phatthanh-moi" in names and "admin" not in names
    with Session(world.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.create")).first()
        assert entry is not None and entry.actor == "quantri-huyen"
        assert session.exec(select(User).where(User.username == "tinh")).first() is None


def test_audit_route_is_scoped(client, world) -> None:
    theirs = world.bulletin("Bình Hải", "submitted")
    mine = world.bulletin("Bình Thạnh", "submitted")
    client.post(f"/api/v1/bulletins/{theirs}/approve", headers=world.headers("duyet-bh")).raise_for_status()
    client.post(f"/api/v1/bulletins/{mine}/approve", headers=world.headers("duyet-bt")).raise_for_status()
    seen = client.get("/api/v1/audit", params={"action": "bulletin.approve"}, headers=world.headers("phatthanh-bt"))
    assert [e["object_id"] for e in seen.json()] == [mine]
    everything = client.get("/api/v1/audit", params={"action": "bulletin.approve"}, headers=world.headers("admin"))
    assert [e["object_id"] for e in everything.json()] == [mine, theirs]
    entry = everything.json()[0]
    assert (entry["actor"], entry["role"], entry["via"], entry["ip"]) == ("duyet-bt", "approver", "token", "testclient")
    older = client.get("/api/v1/audit", params={"before_id": entry["id"]}, headers=world.headers("admin")).json()
    assert all(e["id"] < entry["id"] for e in older) and theirs in {e["object_id"] for e in older}


def test_device_commands_reach_the_cluster_scoped_and_audited(client, world, runtime, broker) -> None:
    import paho.mqtt.client as mqtt

    received: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    arrived = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acct-listener")
    listener.on_subscribe = lambda *args: subscribed.set()

    def on_message(_client, _userdata, message) -> None:
        received.append((message.topic, json.loads(message.payload)))
        arrived.set()

    listener.on_message = on_message
    listener.connect(broker.host, broker.port)
    listener.subscribe("acct/#", qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        tech = world.headers("kythuat-bt")
        refused = client.post("/api/v1/clusters/bh-1/commands", json={"type": "ping"}, headers=tech)
        assert refused.status_code == 403 and "bh-1" in refused.json()["detail"]
        assert (
            client.post(
                "/api/v1/clusters/bt-1/commands", json={"type": "ping"}, headers=world.headers("duyet-bt")
            ).status_code
            == 403
        )
        bad = client.post("/api/v1/clusters/bt-1/commands", json={"type": "volume"}, headers=tech)
        assert bad.status_code == 422
        sent = client.post("/api/v1/clusters/bt-1/commands", json={"type": "volume", "volume": 35}, headers=tech)
        assert sent.status_code == 202 and sent.json()["acknowledged"] is True
        assert arrived.wait(10)
        for wrong in (
            {"type": "amplifier"},
            {"type": "amplifier", "amplifier": "dim"},
            {"type": "ping", "amplifier": "off"},
        ):
            assert client.post("/api/v1/clusters/bt-1/commands", json=wrong, headers=tech).status_code == 422, wrong
        arrived.clear()
        held = client.post(
            "/api/v1/clusters/bt-1/commands", json={"type": "amplifier", "amplifier": "off"}, headers=tech
        )
        assert held.status_code == 202 and arrived.wait(10)
    finally:
        listener.loop_stop()
        listener.disconnect()
    topic, command = received[0]
    assert topic.endswith("/bt-1/command") and (command["type"], command["volume"]) == ("volume", 35)
    assert command["id"] == sent.json()["command_id"] and len(received) == 2
    assert (received[1][1]["type"], received[1][1]["amplifier"], received[1][1]["id"]) == (
        "amplifier",
        "off",
        held.json()["command_id"],
    )
    with Session(world.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "device.volume")).one()
        village = session.get(Cluster, "bt-1").unit_id  # type: ignore[union-attr]
        assert (entry.actor, entry.object_id, entry.unit_id) == ("kythuat-bt", "bt-1", village)


@pytest.mark.parametrize("username", ["admin", "duyet-huyen"])
def test_district_and_province_accounts_see_both_communes(client, world, username) -> None:
    assert len(client.get("/api/v1/clusters", headers=world.headers(username)).json()) == 4
