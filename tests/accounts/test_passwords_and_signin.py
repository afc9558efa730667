"""Argon2 hashing, sign-in with throttling kept in the database, sessions, tokens and the first admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlmodel import Session, select

from broadcast_server.accounts.passwords import WeakPassword, hash_password, needs_rehash, verify_password
from broadcast_server.accounts.principal import Role
from broadcast_server.accounts.service import (
    THROTTLE,
    AccountError,
    InvalidCredentials,
    LoginThrottled,
    authenticate,
    create_user,
    ensure_first_admin,
    issue_token,
    principal_for_token,
    revoke_token,
)
from broadcast_server.accounts.sessions import close_session, open_session, session_for_cookie
from broadcast_server.db.session import session_scope
from broadcast_server.models import ApiToken, AuditEntry, LoginAttempt, User, WebSession
from broadcast_server.settings import Settings

from .conftest import password_of


def test_hashing_is_argon2id_salted_and_verifies() -> None:
    first, second = hash_password("mật khẩu dài"), hash_password("mật khẩu dài")
    assert first.startswith("$argon2id$") and first != second  # a fresh salt each time
    assert verify_password(first, "mật khẩu dài") and verify_password(second, "mật khẩu dài")
    assert not verify_password(first, "mật khẩu dai")
    assert not verify_password("not a hash", "x")
    assert not needs_rehash(first)
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    assert needs_rehash(weaker.hash("x"))


def test_login_rehashes_when_parameters_change(engine) -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with session_scope(engine) as session:
        user = create_user(session, username="lan", password="mat-khau-lan", role=Role.EDITOR)
        user.password_hash = weaker.hash("mat-khau-lan")
    with session_scope(engine) as session:
        principal = authenticate(session, "LAN ", "mat-khau-lan", ip="10.0.0.1")
        assert (principal.username, principal.role) == ("lan", Role.EDITOR)
    with Session(engine) as session:
        stored = session.exec(select(User)).one().password_hash
        assert not needs_rehash(stored) and verify_password(stored, "mat-khau-lan")


def test_create_user_checks_its_input(engine) -> None:
    with session_scope(engine) as session:
        create_user(session, username="lan", password="12345678", role="viewer")
        with pytest.raises(AccountError, match="taken"):
            create_user(session, username="Lan", password="12345678", role="viewer")
        with pytest.raises(WeakPassword):
            create_user(session, username="hoa", password="short", role="viewer")
        with pytest.raises(AccountError, match="unknown role"):
            create_user(session, username="hoa", password="12345678", role="boss")
        with pytest.raises(AccountError, match="does not exist"):
            create_user(session, username="hoa", password="12345678", role="viewer", scope_unit_id=999)
        with pytest.raises(AccountError, match="username"):
            create_user(session, username="có dấu", password="12345678", role="viewer")


def _fail(engine, username: str, ip: str, times: int) -> None:
    for _ in range(times):
        with Session(engine) as session, pytest.raises(InvalidCredentials):
            authenticate(session, username, "wrong password", ip=ip)


def test_five_failures_lock_that_username_from_that_ip(world) -> None:
    engine = world.engine
    _fail(engine, "phatthanh-bt", "10.0.0.1", THROTTLE.per_user_ip)
    with Session(engine) as session, pytest.raises(LoginThrottled) as caught:
        authenticate(session, "phatthanh-bt", password_of("phatthanh-bt"), ip="10.0.0.1")  # right password too
    assert 0 < caught.value.retry_after_s <= 15 * 60 + 1
    # The same account from another address, and another account from the same address, still sign in.
    with Session(engine) as session:
        authenticate(session, "phatthanh-bt", password_of("phatthanh-bt"), ip="10.0.0.2")
        session.commit()
        authenticate(session, "duyet-bt", password_of("duyet-bt"), ip="10.0.0.1")
        session.commit()
    # Refused attempts are not counted again, failures are committed even though the caller rolled back.
    with Session(engine) as session:
        failures = session.exec(select(LoginAttempt).where(LoginAttempt.succeeded == False)).all()  # noqa: E712
        assert len(failures) == THROTTLE.per_user_ip
        actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions.count("login.failure") == 5 and actions.count("login.throttled") == 1
    # Once the failures are older than the window, the lock is gone.
    with session_scope(engine) as session:
        for attempt in session.exec(select(LoginAttempt)):
            attempt.at -= THROTTLE.window + timedelta(seconds=1)
    with Session(engine) as session:
        assert authenticate(session, "phatthanh-bt", password_of("phatthanh-bt"), ip="10.0.0.1").username == (
            "phatthanh-bt"
        )


def test_a_success_resets_the_username_ip_count(world) -> None:
    engine = world.engine
    _fail(engine, "duyet-bt", "10.0.0.9", THROTTLE.per_user_ip - 1)
    with session_scope(engine) as session:
        authenticate(session, "duyet-bt", password_of("duyet-bt"), ip="10.0.0.9")
    _fail(engine, "duyet-bt", "10.0.0.9", THROTTLE.per_user_ip - 1)
    with Session(engine) as session:
        authenticate(session, "duyet-bt", password_of("duyet-bt"), ip="10.0.0.9")


def test_twenty_failures_from_one_ip_lock_that_ip(world) -> None:
    engine = world.engine
    names = [f"khong-co-{i}" for i in range(THROTTLE.per_ip)]  # unknown usernames count too
    for name in names:
        _fail(engine, name, "10.9.9.9", 1)
    with Session(engine) as session, pytest.raises(LoginThrottled):
        authenticate(session, "admin", password_of("admin"), ip="10.9.9.9")
    with Session(engine) as session:
        authenticate(session, "admin", password_of("admin"), ip="10.9.9.8")


def test_failures_from_many_ips_lock_the_username(world) -> None:
    engine = world.engine
    with session_scope(engine) as session:
        session.add_all(
            LoginAttempt(username="duyet-bh", ip=f"10.1.{i // 200}.{i % 200}", succeeded=False)
            for i in range(THROTTLE.per_user)
        )
    with Session(engine) as session, pytest.raises(LoginThrottled):
        authenticate(session, "duyet-bh", password_of("duyet-bh"), ip="10.200.0.1")


def test_disabled_account_cannot_sign_in(world) -> None:
    from broadcast_server.db.types import utcnow

    with session_scope(world.engine) as session:
        session.get(User, world.users["xem-bt"]).disabled_at = utcnow()  # type: ignore[union-attr]
    with Session(world.engine) as session, pytest.raises(InvalidCredentials):
        authenticate(session, "xem-bt", password_of("xem-bt"), ip="10.0.0.1")
    with Session(world.engine) as session:
        assert principal_for_token(session, world.tokens["xem-bt"]) is None


def test_sessions_expire_idle_and_close(world) -> None:
    settings = Settings(session_lifetime_s=3600, session_idle_s=600)
    principal = world.principal("duyet-bt")
    with session_scope(world.engine) as session:
        cookie, csrf = open_session(session, principal, ip="10.0.0.1", settings=settings)
        other, _ = open_session(session, principal, ip="10.0.0.1", settings=settings)
        expired, _ = open_session(session, principal, ip="10.0.0.1", settings=settings)
    with session_scope(world.engine) as session:
        found = session_for_cookie(session, cookie, settings=settings)
        assert found is not None and found[0].username == "duyet-bt" and found[0].via == "session"
        assert found[1] == csrf and session_for_cookie(session, "forged", settings=settings) is None
        # The table holds a hash of the cookie, never the cookie.
        assert cookie not in {row.id for row in session.exec(select(WebSession))}
    with session_scope(world.engine) as session:
        rows = {row.id: row for row in session.exec(select(WebSession))}
        import hashlib

        idle = rows[hashlib.sha256(other.encode()).hexdigest()]
        idle.last_seen_at -= timedelta(seconds=601)
        old = rows[hashlib.sha256(expired.encode()).hexdigest()]
        old.expires_at -= timedelta(seconds=3601)
        old.last_seen_at -= timedelta(seconds=10)  # not idle: only the lifetime ends it
    with session_scope(world.engine) as session:
        assert session_for_cookie(session, other, settings=settings) is None
        assert session_for_cookie(session, expired, settings=settings) is None
        assert session_for_cookie(session, cookie, settings=settings) is not None
        close_session(session, cookie)
    with session_scope(world.engine) as session:
        assert session_for_cookie(session, cookie, settings=settings) is None


def test_tokens_store_only_a_hash_and_revoke(world) -> None:
    import hashlib

    with session_scope(world.engine) as session:
        plain, token = issue_token(session, world.users["duyet-bt"], name="cổng thông tin")
    assert plain.startswith("bct_") and len(plain) > 40
    with Session(world.engine) as session:
        stored = session.get(ApiToken, token.id)
        assert stored.token_hash == hashlib.sha256(plain.encode()).hexdigest()  # type: ignore[union-attr]
        dump = " ".join(str(v) for row in session.exec(select(ApiToken)) for v in row.model_dump().values())
        assert plain not in dump
        principal = principal_for_token(session, plain)
        assert principal is not None and (principal.username, principal.via) == ("duyet-bt", "token")
        assert principal.scope_unit_id == world.units["Bình Thạnh"] and principal.token_id == token.id
        assert principal_for_token(session, plain + "x") is None and principal_for_token(session, "abc") is None
    with session_scope(world.engine) as session:
        revoke_token(session, token.id)  # type: ignore[arg-type]
    with Session(world.engine) as session:
        assert principal_for_token(session, plain) is None


def test_first_admin_only_when_no_account_exists(engine) -> None:
    with session_scope(engine) as session:
        assert ensure_first_admin(session, None, "x") is None
        admin = ensure_first_admin(session, "QuanTri", "mat-khau-dau-tien")
        assert admin is not None and (admin.username, admin.role, admin.scope_unit_id) == ("quantri", "admin", None)
    with session_scope(engine) as session:
        assert ensure_first_admin(session, "khac", "mat-khau-khac") is None
        assert [u.username for u in session.exec(select(User))] == ["quantri"]
        assert session.exec(select(AuditEntry.action)).all() == ["user.create"]


def test_throttle_counts_are_shared_by_replicas(world, database_url) -> None:
    """Two engines (two server processes) on one database see the same failures."""
    from broadcast_server.db.engine import make_engine

    other = make_engine(database_url)
    try:
        _fail(world.engine, "duyet-huyen", "10.7.7.7", THROTTLE.per_user_ip - 1)
        _fail(other, "duyet-huyen", "10.7.7.7", 1)
        with Session(world.engine) as session, pytest.raises(LoginThrottled):
            authenticate(session, "duyet-huyen", password_of("duyet-huyen"), ip="10.7.7.7")
        with other.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM login_attempt")).scalar_one() == THROTTLE.per_user_ip
    finally:
        other.dispose()


def test_without_the_test_profile_passwords_are_hashed_at_rfc_9106_cost() -> None:
    """The suite hashes cheaply (tests/conftest.py); a server started without that variable must not."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "BCAST_PASSWORD_HASH_PROFILE"}
    probe = "from broadcast_server.accounts.passwords import hash_password; print(hash_password('x'))"
    encoded = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "$m=65536,t=3,p=4$" in encoded.stdout
