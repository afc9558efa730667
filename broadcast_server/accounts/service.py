"""Accounts: create users, sign in with throttling, API tokens, and the first administrator.

Throttling is stored in ``login_attempt`` so every server replica sees the same counts. The rule (also in
docs/accounts.md), over the last 15 minutes and counting only failures since the last success of the
same pair:
- 5 failures for one username from one IP lock that username from that IP;
- 20 failures from one IP (any usernames) lock that IP;
- 50 failures for one username (any IPs) lock that username everywhere.
A lock ends when the oldest counted failure leaves the 15-minute window. Attempts refused by a lock do
not count again, so a locked user is free 15 minutes after the failures stop.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select

from broadcast_server.accounts.passwords import (
    DUMMY_HASH,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from broadcast_server.accounts.principal import Principal, Role
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.models import AdminUnit, ApiToken, LoginAttempt, User

TOKEN_PREFIX = "bct_"
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class ThrottleRule:
    """How many failures within `window` lock a key (username+ip, ip, or username)."""

    window: timedelta = timedelta(minutes=15)
    per_user_ip: int = 5
    per_ip: int = 20
    per_user: int = 50


THROTTLE = ThrottleRule()
ATTEMPTS_KEPT = timedelta(days=1)  # older attempts are deleted after a successful sign-in


class AccountError(ValueError):
    """A request about accounts or tokens that cannot be honoured; the message says why."""


class InvalidCredentials(Exception):
    """Wrong username or password, or a disabled account (the caller is not told which)."""


class LoginThrottled(Exception):
    """Too many failed sign-ins; `retry_after_s` says when to try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def normalize_username(username: str) -> str:
    return username.strip().lower()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    scope_unit_id: int | None = None,
    display_name: str = "",
) -> User:
    """Add an account; the username is lower-cased and must be new, the password at least 8 characters."""
    username = normalize_username(username)
    if not USERNAME_PATTERN.match(username):
        raise AccountError("username must be 2-64 characters: letters a-z, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None
    check_new_password(password)
    if scope_unit_id is not None and session.get(AdminUnit, scope_unit_id) is None:
        raise AccountError(f"unit {scope_unit_id} does not exist")
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        raise AccountError(f"username {username!r} is taken")
    user = User(
        username=username,
        display_name=display_name.strip()[:200],
        password_hash=hash_password(password),
        role=role.value,
        scope_unit_id=scope_unit_id,
    )
    session.add(user)
    session.flush()
    return user


def principal_for_user(session: Session, user: User, *, via: str = "session", token_id: int | None = None) -> Principal:
    """The principal acting as `user` (its role and scope)."""
    return Principal(
        username=user.username,
        role=Role(user.role),
        scope_unit_id=user.scope_unit_id,
        user_id=user.id,
        display_name=user.display_name,
        via=via,
        token_id=token_id,
    )


def _failures_since(session: Session, since: datetime, *conditions) -> tuple[int, datetime | None]:
    row = session.exec(
        select(func.count(), func.min(LoginAttempt.at)).where(
            LoginAttempt.succeeded == False,  # noqa: E712
            LoginAttempt.at > since,
            *conditions,
        )
    ).one()
    return int(row[0]), row[1]


def _throttle_check(session: Session, username: str, ip: str, now: datetime, rule: ThrottleRule) -> None:
    window_start = now - rule.window
    last_success = session.exec(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username,
            LoginAttempt.ip == ip,
            LoginAttempt.succeeded == True,  # noqa: E712
        )
    ).one()
    checks = [
        (
            max(window_start, last_success) if last_success else window_start,
            rule.per_user_ip,
            (LoginAttempt.username == username, LoginAttempt.ip == ip),
        ),
        (window_start, rule.per_ip, (LoginAttempt.ip == ip,)),
        (window_start, rule.per_user, (LoginAttempt.username == username,)),
    ]
    for since, limit, conditions in checks:
        count, oldest = _failures_since(session, since, *conditions)
        if count >= limit and oldest is not None:
            # The lock lifts when enough failures have left the window; the oldest one is the first to go.
            retry = max(1, int((oldest + rule.window - now).total_seconds()) + 1)
            raise LoginThrottled(retry)


def authenticate(
    session: Session, username: str, password: str, *, ip: str, rule: ThrottleRule = THROTTLE
) -> Principal:
    """Check a username and password from `ip`; record the attempt and audit it.

    A failure is committed before `InvalidCredentials` or `LoginThrottled` is raised, so the caller's
    rollback cannot erase it (throttling depends on it).
    """
    username = normalize_username(username)[:64]
    ip = (ip or "unknown")[:64]
    now = utcnow()
    try:
        _throttle_check(session, username, ip, now, rule)
    except LoginThrottled as exc:
        record(
            session,
            principal=None,
            actor=username or "?",
            action="login.throttled",
            object_type="user",
            object_id=username,
            detail={"retry_after_s": exc.retry_after_s},
            ip=ip,
        )
        session.commit()
        raise
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(DUMMY_HASH, password)  # the same cost as a real check: no username probing by timing
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.disabled_at is None
    session.add(LoginAttempt(username=username, ip=ip, at=now, succeeded=ok))
    if not ok:
        record(
            session,
            principal=None,
            actor=username or "?",
            action="login.failure",
            object_type="user",
            object_id=username,
            ip=ip,
            unit_id=user.scope_unit_id if user else None,
        )
        session.commit()
        raise InvalidCredentials("wrong username or password")
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    session.add(user)
    session.exec(delete(LoginAttempt).where(LoginAttempt.at < now - ATTEMPTS_KEPT))  # type: ignore[arg-type]
    principal = principal_for_user(session, user)
    record(session, principal=principal, action="login.success", object_type="user", object_id=str(user.id), ip=ip)
    return principal


# ------------------------------------------------------------------------------------------------ tokens


def _token_hash(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def issue_token(session: Session, user_id: int, *, name: str) -> tuple[str, ApiToken]:
    """A new API token for the user: the plain value (show it once, it is not stored) and its row."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise AccountError(f"user {user_id} does not exist or is disabled")
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("token name must have 1-200 characters")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=_token_hash(plain), prefix=plain[:10])
    session.add(token)
    session.flush()
    return plain, token


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token at once (revoking twice keeps the first time)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise AccountError(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
    return token


def principal_for_token(session: Session, plain: str) -> Principal | None:
    """The principal of a valid token (not revoked, user enabled), or None."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    row = session.exec(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == _token_hash(plain))  # type: ignore[arg-type]
    ).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or user.disabled_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now  # at most one write a minute per token
        session.add(token)
    return principal_for_user(session, user, via="token", token_id=token.id)


# ------------------------------------------------------------------------------------------ first admin


def ensure_first_admin(session: Session, username: str | None, password: str | None) -> User | None:
    """Create an unscoped administrator when no account exists yet and both values are given."""
    if not username or not password:
        return None
    if session.exec(select(User.id).limit(1)).first() is not None:
        return None
    user = create_user(session, username=username, password=password, role=Role.ADMIN, display_name="Quản trị viên")
    record(
        session,
        principal=None,
        action="user.create",
        object_type="user",
        object_id=str(user.id),
        detail={"username": user.username, "role": user.role, "first_admin": True},
    )
    return user
