"""Server-side console sessions: the cookie holds a random value, the table holds its SHA-256 and the CSRF token.

A session ends at `Settings.session_lifetime_s` after sign-in, or sooner after `session_idle_s` without a
request. Closing one deletes its row, so a stolen cookie stops working at sign-out.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.service import principal_for_user
from broadcast_server.db.types import utcnow
from broadcast_server.models import User, WebSession
from broadcast_server.settings import Settings, get_settings

SESSION_COOKIE = "bcast_session"
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most once a minute per session


def _session_id(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def open_session(
    session: Session, principal: Principal, *, ip: str | None, settings: Settings | None = None
) -> tuple[str, str]:
    """Start a console session for a signed-in user: (cookie value, CSRF token)."""
    if principal.user_id is None:
        raise ValueError("only an account can open a console session")
    settings = settings or get_settings()
    now = utcnow()
    cookie_value = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=_session_id(cookie_value),
            user_id=principal.user_id,
            csrf_token=csrf,
            ip=ip[:64] if ip else None,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=settings.session_lifetime_s),
        )
    )
    session.exec(delete(WebSession).where(WebSession.expires_at < now))  # type: ignore[arg-type]
    session.flush()
    return cookie_value, csrf


def close_session(session: Session, cookie_value: str) -> None:
    """Sign out: forget the session (an unknown cookie is ignored)."""
    session.exec(delete(WebSession).where(WebSession.id == _session_id(cookie_value)))  # type: ignore[arg-type]


def session_for_cookie(
    session: Session, cookie_value: str, *, settings: Settings | None = None
) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session, or None (unknown, expired, idle, user disabled)."""
    if not cookie_value or len(cookie_value) > 200:
        return None
    settings = settings or get_settings()
    row = session.get(WebSession, _session_id(cookie_value))
    if row is None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at >= timedelta(seconds=settings.session_idle_s):
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return principal_for_user(session, user, via="session"), row.csrf_token
