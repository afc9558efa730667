"""Enrolment tokens, enrolment and revocation on SQLite and PostgreSQL, and their API routes.

Only hashes are stored: no plain password or token is found anywhere in the database afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast_server.broker_auth.credentials import (
    EnrolmentRefused,
    NoActiveCredential,
    UnknownCluster,
    broker_accounts,
    enrol_cluster,
    issue_enrolment_token,
    revoke_cluster,
    set_server_password,
)
from broadcast_server.broker_auth.password_hash import verify_password
from broadcast_server.broker_auth.sync import BrokerFiles, sync_broker
from broadcast_server.db.session import session_scope
from broadcast_server.models import ClusterCredential
from broadcast_server.settings import Settings

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _all_values(snapshot, database_url) -> str:
    return repr(snapshot(database_url))


def test_enrolment_spends_a_token_once_and_stores_only_hashes(engine, fleet, database_url, snapshot) -> None:
    with session_scope(engine) as session:
        issued = issue_enrolment_token(session, "A", now=NOW, ttl=DAY, created_by="kt-vien")
    assert issued.expires_at == NOW + DAY
    with session_scope(engine) as session:
        enrolment = enrol_cluster(session, "A", issued.token, now=NOW + timedelta(hours=1))
    assert enrolment.username == "A" and len(enrolment.password) >= 43
    with session_scope(engine) as session, pytest.raises(EnrolmentRefused, match="already been used") as caught:
        enrol_cluster(session, "A", issued.token, now=NOW + timedelta(hours=2))
    assert caught.value.reason == "used"
    with session_scope(engine) as session:
        [account] = broker_accounts(session)
    assert (account.username, account.cluster_id) == ("A", "A")
    assert verify_password(enrolment.password, account.broker_hash)
    stored = _all_values(snapshot, database_url)
    assert enrolment.password not in stored and issued.token not in stored


def test_expired_foreign_and_unknown_tokens_are_refused(engine, fleet) -> None:
    with session_scope(engine) as session:
        issued = issue_enrolment_token(session, "A", now=NOW, ttl=DAY)
    for cluster, token, when, reason in [
        ("A", issued.token, NOW + DAY, "expired"),
        ("B", issued.token, NOW, "invalid"),  # a token of A does not enrol B
        ("A", "guessed-token", NOW, "invalid"),
        ("A", "x" * 500, NOW, "invalid"),
    ]:
        with session_scope(engine) as session, pytest.raises(EnrolmentRefused) as caught:
            enrol_cluster(session, cluster, token, now=when)
        assert caught.value.reason == reason
    with session_scope(engine) as session:  # the refusals spent nothing: the token still works in time
        assert enrol_cluster(session, "A", issued.token, now=NOW + DAY - timedelta(seconds=1)).cluster_id == "A"


def test_a_new_token_cancels_the_old_one_and_re_enrolment_revokes_the_old_password(engine, fleet) -> None:
    with session_scope(engine) as session:
        first = issue_enrolment_token(session, "A", now=NOW, ttl=DAY)
        second = issue_enrolment_token(session, "A", now=NOW + timedelta(minutes=1), ttl=DAY)
    with session_scope(engine) as session, pytest.raises(EnrolmentRefused):
        enrol_cluster(session, "A", first.token, now=NOW + timedelta(minutes=2))
    with session_scope(engine) as session:
        old = enrol_cluster(session, "A", second.token, now=NOW + timedelta(minutes=3))
        third = issue_enrolment_token(session, "A", now=NOW + timedelta(minutes=4), ttl=DAY)
    with session_scope(engine) as session:
        new = enrol_cluster(session, "A", third.token, now=NOW + timedelta(minutes=5))
    with session_scope(engine) as session:
        [account] = broker_accounts(session)
        rows = session.exec(select(ClusterCredential).order_by(ClusterCredential.id)).all()
    assert verify_password(new.password, account.broker_hash) and not verify_password(old.password, account.broker_hash)
    assert [row.revoked_at is None for row in rows] == [False, True]


def test_revocation_and_its_refusals(engine, fleet) -> None:
    with session_scope(engine) as session, pytest.raises(UnknownCluster):
        issue_enrolment_token(session, "nope", now=NOW, ttl=DAY)
    with session_scope(engine) as session, pytest.raises(NoActiveCredential):
        revoke_cluster(session, "A", now=NOW)
    with session_scope(engine) as session:
        pending = issue_enrolment_token(session, "B", now=NOW, ttl=DAY)
        issued = issue_enrolment_token(session, "A", now=NOW, ttl=DAY)
        enrol_cluster(session, "A", issued.token, now=NOW)
        set_server_password(session, "bcast-server", "s" * 20, now=NOW)
    with session_scope(engine) as session:
        revocation = revoke_cluster(session, "A", now=NOW + HOUR)
        assert (revocation.credentials, revocation.tokens) == (1, 0)
        revocation = revoke_cluster(session, "B", now=NOW + HOUR)  # B never enrolled: its token is cancelled
        assert (revocation.credentials, revocation.tokens) == (0, 1)
    with session_scope(engine) as session:
        assert [a.username for a in broker_accounts(session)] == ["bcast-server"]
        with pytest.raises(EnrolmentRefused):
            enrol_cluster(session, "B", pending.token, now=NOW + 2 * HOUR)


def test_sync_writes_both_files_and_a_failed_write_stores_nothing(engine, fleet, tmp_path) -> None:
    settings = Settings(broker_password_file=tmp_path / "passwd", broker_acl_file=tmp_path / "acl", topic_root="t")
    files = BrokerFiles.from_settings(settings)
    with session_scope(engine) as session:
        issued = issue_enrolment_token(session, "A", now=NOW, ttl=DAY)
    with session_scope(engine) as session:
        enrol_cluster(session, "A", issued.token, now=NOW)
        assert sync_broker(session, files).accounts == 1
    assert (tmp_path / "passwd").read_text().startswith("A:$7$")
    assert "topic write t/v1/clusters/A/report" in (tmp_path / "acl").read_text()
    # The ACL's folder cannot be written: the enrolment is not stored and the token stays unspent.
    blocked = Settings(broker_password_file=tmp_path / "passwd", broker_acl_file=tmp_path / "file" / "acl")
    (tmp_path / "file").write_text("not a folder")
    with session_scope(engine) as session:
        again = issue_enrolment_token(session, "B", now=NOW, ttl=DAY)
    with pytest.raises(OSError), session_scope(engine) as session:
        enrol_cluster(session, "B", again.token, now=NOW)
        sync_broker(session, BrokerFiles.from_settings(blocked))
    with session_scope(engine) as session:
        assert [a.cluster_id for a in broker_accounts(session)] == ["A"]
        assert enrol_cluster(session, "B", again.token, now=NOW).cluster_id == "B"


# ------------------------------------------------------------------------------------------------- API


def _client(engine, database_url, tmp_path, **settings) -> TestClient:
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime

    runtime = Runtime.from_settings(Settings(database_url=database_url, **settings), engine=engine)
    return TestClient(create_app(runtime, manage_runtime=False))


def _token_headers(engine, role: str, scope_unit_id: int | None = None) -> dict[str, str]:
    from broadcast_server.accounts.service import create_user, issue_token

    with session_scope(engine) as session:
        user = create_user(
            session,
            username=f"{role}-{scope_unit_id}",
            password="mat-khau-dai-1",
            role=role,
            scope_unit_id=scope_unit_id,
        )
        plain, _ = issue_token(session, user.id, name="test")
    return {"Authorization": f"Bearer {plain}"}


def test_api_issue_enrol_and_revoke(engine, fleet, database_url, tmp_path) -> None:
    files = {"broker_password_file": tmp_path / "passwd", "broker_acl_file": tmp_path / "acl"}
    technician = _token_headers(engine, "technician", fleet.units["Xã Một"])
    with _client(engine, database_url, tmp_path, **files) as client:
        url = "/api/v1/clusters/A/enrolment-tokens"
        assert client.post(url).status_code == 401
        assert client.post(url, headers=_token_headers(engine, "viewer")).status_code == 403
        out_of_scope = client.post("/api/v1/clusters/B/enrolment-tokens", headers=technician)
        assert out_of_scope.status_code == 403 and "outside" in out_of_scope.json()["detail"]
        assert client.post(url, headers=technician, json={"ttl_hours": 0}).status_code == 422
        created = client.post(url, headers=technician, json={"ttl_hours": 2})
        assert created.status_code == 201, created.text
        token = created.json()["token"]

        assert client.post("/api/v1/enrol", json={"cluster_id": "A/../B", "token": token}).status_code == 422
        wrong = client.post("/api/v1/enrol", json={"cluster_id": "B", "token": token})
        assert wrong.status_code == 403 and wrong.json()["detail"] == "the enrolment token is not valid for cluster 'B'"
        enrolled = client.post("/api/v1/enrol", json={"cluster_id": "A", "token": token})
        assert enrolled.status_code == 201, enrolled.text
        body = enrolled.json()
        assert (body["username"], body["topic_root"], body["broker_reloaded"]) == ("A", "bcast", False)
        assert (tmp_path / "passwd").read_text().startswith("A:$7$")
        assert body["password"] not in (tmp_path / "passwd").read_text()
        again = client.post("/api/v1/enrol", json={"cluster_id": "A", "token": token})
        assert again.status_code == 403 and "already been used" in again.json()["detail"]

        assert client.delete("/api/v1/clusters/B/credentials", headers=technician).status_code == 403
        revoked = client.delete("/api/v1/clusters/A/credentials", headers=technician)
        assert revoked.status_code == 200 and revoked.json()["credentials_revoked"] == 1
        assert (tmp_path / "passwd").read_text() == ""
        assert client.delete("/api/v1/clusters/A/credentials", headers=technician).status_code == 409


def test_api_enrolment_without_broker_files_is_refused_and_spends_nothing(
    engine, fleet, database_url, tmp_path
) -> None:
    with session_scope(engine) as session:
        issued = issue_enrolment_token(session, "A", now=datetime.now(UTC), ttl=DAY)
    with _client(engine, database_url, tmp_path) as client:
        refused = client.post("/api/v1/enrol", json={"cluster_id": "A", "token": issued.token})
    assert refused.status_code == 503 and "BCAST_BROKER_PASSWORD_FILE" in refused.json()["detail"]
    with session_scope(engine) as session:
        assert enrol_cluster(session, "A", issued.token, now=datetime.now(UTC)).cluster_id == "A"


def test_expired_token_through_the_api(engine, fleet, database_url, tmp_path) -> None:
    with session_scope(engine) as session:
        issued = issue_enrolment_token(session, "A", now=datetime.now(UTC) - 2 * DAY, ttl=DAY)
    files = {"broker_password_file": tmp_path / "passwd", "broker_acl_file": tmp_path / "acl"}
    with _client(engine, database_url, tmp_path, **files) as client:
        refused = client.post("/api/v1/enrol", json={"cluster_id": "A", "token": issued.token})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "the enrolment token has expired; ask for a new one"


def test_migration_0005_downgrades_and_upgrades_again(engine, fleet, database_url) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from broadcast_server.db.migrate import make_config, upgrade

    with session_scope(engine) as session:
        issue_enrolment_token(session, "A", now=NOW, ttl=DAY)
    engine.dispose()
    with engine.connect() as connection:
        config = make_config(database_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        connection.commit()
    tables = set(inspect(engine).get_table_names())
    assert not tables & {"cluster_credential", "enrolment_token", "broker_server_account"} and "cluster" in tables
    upgrade(database_url)
    with session_scope(engine) as session:
        assert broker_accounts(session) == []
