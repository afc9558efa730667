"""Approval workflow (Thông tư 39), emergencies that skip the queue, the append-only audit log, the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from typer.testing import CliRunner

from broadcast_server.accounts.principal import CLI_PRINCIPAL, NotPermitted
from broadcast_server.accounts.service import authenticate, principal_for_token
from broadcast_server.audit.log import entries, record
from broadcast_server.db.session import session_scope
from broadcast_server.models import AuditEntry, Bulletin, Priority, User
from broadcast_server.services.bulletins import (
    BulletinError,
    BulletinForbidden,
    BulletinStateError,
    add_new_bulletin,
    approve_bulletin,
    edit_text_bulletin,
    return_bulletin,
    submit_bulletin,
)
from broadcast_server.services.dispatch import Target, create_broadcast


def _status(world, bulletin_id: str) -> Bulletin:
    with Session(world.engine) as session:
        return session.get(Bulletin, bulletin_id)  # type: ignore[return-value]


def test_draft_submit_return_edit_submit_approve(world, tmp_path) -> None:
    author, district = world.principal("phatthanh-bt"), world.principal("duyet-huyen")
    bulletin_id = world.bulletin("Bình Thạnh")
    with session_scope(world.engine) as session:
        with pytest.raises(BulletinStateError):
            approve_bulletin(session, bulletin_id, district)  # a draft is not in the queue yet
        submit_bulletin(session, bulletin_id, author, ip="10.0.0.5")
    assert _status(world, bulletin_id).status == "submitted"
    with session_scope(world.engine) as session:
        with pytest.raises(BulletinError, match="comment"):
            return_bulletin(session, bulletin_id, district, "   ")
        with pytest.raises(BulletinStateError):
            submit_bulletin(session, bulletin_id, author)  # already submitted
        return_bulletin(session, bulletin_id, district, "Sửa lại giờ họp: 8 giờ sáng.")
    returned = _status(world, bulletin_id)
    assert (returned.status, returned.review_comment, returned.reviewed_by) == (
        "returned",
        "Sửa lại giờ họp: 8 giờ sáng.",
        world.users["duyet-huyen"],
    )
    with session_scope(world.engine) as session:
        with pytest.raises(BulletinStateError):
            approve_bulletin(session, bulletin_id, district)  # returned: must be edited and submitted again
        edit_text_bulletin(session, tmp_path, bulletin_id, author, title="Tin đã sửa")
    assert (_status(world, bulletin_id).status, _status(world, bulletin_id).title) == ("edited", "Tin đã sửa")
    with session_scope(world.engine) as session:
        submit_bulletin(session, bulletin_id, author)
        approve_bulletin(session, bulletin_id, district)
    approved = _status(world, bulletin_id)
    assert approved.status == "approved" and approved.reviewed_at is not None and approved.review_comment is None
    with session_scope(world.engine) as session:
        with pytest.raises(BulletinStateError):
            edit_text_bulletin(session, tmp_path, bulletin_id, author, title="Đổi sau khi duyệt")
    with Session(world.engine) as session:
        trail = session.exec(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.object_id == bulletin_id)
            .order_by(AuditEntry.id)
        ).all()
    assert trail == [
        ("bulletin.submit", "phatthanh-bt"),
        ("bulletin.return", "duyet-huyen"),
        ("bulletin.edit", "phatthanh-bt"),
        ("bulletin.submit", "phatthanh-bt"),
        ("bulletin.approve", "duyet-huyen"),
    ]


def test_roles_and_scope_in_the_service(world) -> None:
    theirs = world.bulletin("Bình Hải", "submitted")
    mine = world.bulletin("Bình Thạnh", "submitted")
    with session_scope(world.engine) as session:
        with pytest.raises(NotPermitted):
            approve_bulletin(session, mine, world.principal("phatthanh-bt"))
        with pytest.raises(BulletinForbidden):
            approve_bulletin(session, theirs, world.principal("duyet-bt"))
        with pytest.raises(BulletinForbidden):
            return_bulletin(session, theirs, world.principal("duyet-bt"), "không")
        with pytest.raises(NotPermitted):
            submit_bulletin(session, mine, world.principal("kythuat-bt"))
    # The system (demos, tests) keeps its old positional call, from any status.
    draft = world.bulletin("Bình Hải", title="Bản nháp")
    with session_scope(world.engine) as session:
        approve_bulletin(session, draft)
    with Session(world.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.object_id == draft)).one()
    assert (_status(world, draft).status, entry.actor, entry.via, entry.unit_id) == (
        "approved",
        "system",
        "system",
        world.units["Bình Hải"],
    )


@pytest.mark.parametrize(
    ("username", "skips"), [("duyet-bt", True), ("duyet-huyen", True), ("phatthanh-bt", False), ("admin", True)]
)
def test_emergency_skips_the_queue_only_for_roles_allowed(world, username, skips) -> None:
    principal = world.principal(username)
    with session_scope(world.engine) as session:
        bulletin = Bulletin(
            title="Bão số 5 đổ bộ",
            text="Khẩn cấp",
            kind="text",
            priority=Priority.EMERGENCY.value,
            owner_unit_id=world.units["Bình Thạnh"],
            created_by=principal.user_id,
        )
        add_new_bulletin(session, bulletin, principal, ip="10.0.0.7")
        bulletin_id = bulletin.id
    stored = _status(world, bulletin_id)
    assert stored.status == ("approved" if skips else "draft")
    with Session(world.engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.object_id == bulletin_id).order_by(AuditEntry.id)
        ).all()
    assert actions == (["bulletin.create", "bulletin.emergency_skip_queue"] if skips else ["bulletin.create"])


def test_emergency_through_the_api_with_speech(client, world) -> None:
    """An approver's emergency bulletin is spoken, approved at once and audited; a broadcaster's waits."""
    body = {"title": "Cảnh báo lũ", "text": "Nước sông dâng cao, bà con di dời ngay.", "priority": "emergency"}
    made = client.post("/api/v1/bulletins", json=body, headers=world.headers("duyet-bt"))
    assert made.status_code == 201, made.text
    assert (made.json()["status"], made.json()["owner_unit_id"]) == ("approved", world.units["Bình Thạnh"])
    assert made.json()["duration_s"] > 0
    waits = client.post("/api/v1/bulletins", json=body, headers=world.headers("phatthanh-bt"))
    assert waits.status_code == 201 and waits.json()["status"] == "draft"
    refused = client.post(
        "/api/v1/bulletins",
        json=body | {"owner_unit_id": world.units["Bình Hải"]},
        headers=world.headers("phatthanh-bt"),
    )
    assert refused.status_code == 403
    skipped = client.get(
        "/api/v1/audit", params={"action": "bulletin.emergency_skip_queue"}, headers=world.headers("admin")
    ).json()
    assert [(e["object_id"], e["actor"]) for e in skipped] == [(made.json()["id"], "duyet-bt")]


def test_audit_log_is_append_only_in_the_database(engine) -> None:
    """Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), whatever the caller."""
    with session_scope(engine) as session:
        entry_id = record(
            session, principal=CLI_PRINCIPAL, action="schedule.apply", object_type="schedule_file", object_id="x"
        ).id
    for statement in (
        "UPDATE audit_entry SET actor = 'someone else'",
        "DELETE FROM audit_entry",
        *(["TRUNCATE audit_entry"] if engine.dialect.name == "postgresql" else []),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.get(AuditEntry, entry_id).action = "changed"  # type: ignore[union-attr]
    with Session(engine) as session:
        stored = session.exec(select(AuditEntry)).one()
    assert (stored.actor, stored.action, stored.via) == ("cli", "schedule.apply", "cli")


def test_entries_are_scoped_and_paged(world) -> None:
    with session_scope(world.engine) as session:
        for name in ("Bình Thạnh", "Bình Hải", "Bình Sơn"):
            record(
                session, principal=None, action="x.test", object_type="unit", object_id=name, unit_id=world.units[name]
            )
        record(session, principal=None, action="x.test", object_type="unit", object_id="nowhere")
    with Session(world.engine) as session:
        seen = {e.object_id for e in entries(session, world.principal("phatthanh-bt"), limit=50, action="x.test")}
        assert seen == {"Bình Thạnh"}
        seen = {e.object_id for e in entries(session, world.principal("duyet-huyen"), limit=50, action="x.test")}
        assert seen == {"Bình Thạnh", "Bình Hải", "Bình Sơn"}
        every = entries(session, world.principal("admin"), limit=50, action="x.test")
        assert [e.object_id for e in every] == ["nowhere", "Bình Sơn", "Bình Hải", "Bình Thạnh"]
        page = entries(session, world.principal("admin"), limit=2, before_id=every[1].id, action="x.test")
        assert [e.object_id for e in page] == ["Bình Hải", "Bình Thạnh"]


def test_broadcast_by_the_system_is_audited(world) -> None:
    bulletin_id = world.bulletin("Bình Thạnh", "approved")
    with session_scope(world.engine) as session:
        broadcast, deliveries = create_broadcast(session, bulletin_id, Target((), ("bt-1", "bt-2")), ttl_s=60)
    with Session(world.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.create")).one()
    assert len(deliveries) == 2 and entry.object_id == broadcast.id and entry.actor == "system"
    assert entry.unit_id == world.units["Bình Thạnh"]  # the lowest unit holding both clusters: their commune


def test_cli_user_add_list_and_tokens(world, database_url) -> None:
    from bcast.cli import app

    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "user",
            "add",
            "Hoa",
            "--role",
            "broadcaster",
            "--unit",
            "Quảng Ngãi/Bình Sơn/Bình Hải",
            "--name",
            "Nguyễn Thị Hoa",
            "--password-stdin",
            "--database-url",
            database_url,
        ],
        input="mat-khau-hoa\n",
    )
    assert added.exit_code == 0, added.output
    assert "Đã tạo tài khoản hoa" in added.output
    with Session(world.engine) as session:
        user = session.exec(select(User).where(User.username == "hoa")).one()
        assert (user.role, user.scope_unit_id, user.display_name) == (
            "broadcaster",
            world.units["Bình Hải"],
            "Nguyễn Thị Hoa",
        )
        assert authenticate(session, "hoa", "mat-khau-hoa", ip="127.0.0.1").scope_unit_id == world.units["Bình Hải"]
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
        assert (entry.actor, entry.via) == ("cli", "cli")
    by_id = runner.invoke(
        app,
        [
            "user",
            "add",
            "minh",
            "--role",
            "technician",
            "--unit",
            str(world.units["Bình Sơn"]),
            "--password-stdin",
            "--database-url",
            database_url,
        ],
        input="mat-khau-minh\n",
    )
    assert by_id.exit_code == 0, by_id.output
    for bad_args, stdin in (
        (["user", "add", "x2", "--role", "viewer", "--unit", "Quảng Ngãi/Không Có", "--password-stdin"], "12345678\n"),
        (["user", "add", "hoa", "--role", "viewer", "--password-stdin"], "12345678\n"),
        (["user", "add", "x3", "--role", "viewer", "--password-stdin"], "ngan\n"),
    ):
        refused = runner.invoke(app, [*bad_args, "--database-url", database_url], input=stdin)
        assert refused.exit_code == 2, refused.output
    listed = runner.invoke(app, ["user", "list", "--database-url", database_url], env={"COLUMNS": "250"})
    assert listed.exit_code == 0 and "Phát thanh viên xã" in listed.output and "Bình Hải" in listed.output

    created = runner.invoke(app, ["token", "create", "hoa", "--name", "điện thoại", "--database-url", database_url])
    assert created.exit_code == 0, created.output
    plain = next(line for line in created.output.splitlines() if line.startswith("bct_"))
    with Session(world.engine) as session:
        principal = principal_for_token(session, plain)
        assert principal is not None and principal.username == "hoa"
        token_id = principal.token_id
    revoked = runner.invoke(app, ["token", "revoke", str(token_id), "--database-url", database_url])
    assert revoked.exit_code == 0, revoked.output
    with Session(world.engine) as session:
        assert principal_for_token(session, plain) is None
        actions = session.exec(select(AuditEntry.action).where(AuditEntry.via == "cli").order_by(AuditEntry.id)).all()
    assert actions == ["user.create", "user.create", "token.issue", "token.revoke"]


def test_password_prompt_when_not_on_stdin(world, database_url) -> None:
    from bcast.cli import app

    result = CliRunner().invoke(
        app,
        ["user", "add", "lan", "--role", "viewer", "--database-url", database_url],
        input="mat-khau-lan\nmat-khau-lan\n",
    )
    assert result.exit_code == 0, result.output
    with Session(world.engine) as session:
        assert authenticate(session, "lan", "mat-khau-lan", ip="127.0.0.1").username == "lan"


def test_0004_keeps_bulletins_and_downgrades(database_url) -> None:
    """A 0003 database keeps its bulletins through 0004; going back turns the new statuses into drafts."""
    from alembic import command

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import make_config, upgrade

    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO bulletin (id, title, kind, priority, status, created_at)"
                    " VALUES ('b1', 'Tin', 'text', 'normal', 'approved', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(database_url, "0004")
        with engine.begin() as connection:
            row = connection.execute(text("SELECT status, owner_unit_id FROM bulletin")).one()
            assert tuple(row) == ("approved", None)
            connection.execute(text("UPDATE bulletin SET status = 'submitted'"))
        with engine.connect() as connection:
            config = make_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            connection.commit()
            assert connection.execute(text("SELECT status FROM bulletin")).scalar_one() == "draft"
            with pytest.raises(DBAPIError):
                connection.execute(text("UPDATE bulletin SET status = 'submitted'"))
    finally:
        engine.dispose()
