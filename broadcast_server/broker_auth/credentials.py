"""Use cases on the database: enrolment tokens, enrolment, revocation, the server's broker account.

Plain passwords and tokens leave these functions once, in their return value; only the broker's ``$7$``
hash of a password and the SHA-256 of a token are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from broadcast_server.broker_auth.broker_files import (
    BrokerAccount,
    InvalidBrokerAccount,
    check_username,
    cluster_username,
)
from broadcast_server.broker_auth.password_hash import hash_password, new_password
from broadcast_server.models import BrokerServerAccount, Cluster, ClusterCredential, EnrolmentToken

TOKEN_BYTES = 24  # 32 URL-safe characters, 192 bits: guessing one is hopeless, so no rate limit is needed
MAX_TOKEN_LENGTH = 200
MAX_TTL = timedelta(days=30)


class UnknownCluster(LookupError):
    """No cluster with this id in the fleet."""


class NoActiveCredential(LookupError):
    """The cluster has neither a credential nor an enrolment token left to revoke."""


class EnrolmentRefused(PermissionError):
    """A token that is unknown, meant for another cluster, already used or expired; `reason` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "invalid", "used" or "expired"


@dataclass(frozen=True)
class IssuedToken:
    cluster_id: str
    token: str  # shown once
    expires_at: datetime


@dataclass(frozen=True)
class Enrolment:
    cluster_id: str
    username: str
    password: str  # shown once


@dataclass(frozen=True)
class Revocation:
    cluster_id: str
    credentials: int  # credentials revoked (0 or 1)
    tokens: int  # unused enrolment tokens cancelled


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _require_cluster(session: Session, cluster_id: str) -> None:
    if session.get(Cluster, cluster_id) is None:
        raise UnknownCluster(f"cluster {cluster_id!r} is not in the fleet")


def issue_enrolment_token(
    session: Session, cluster_id: str, *, now: datetime, ttl: timedelta, created_by: str | None = None
) -> IssuedToken:
    """A new one-time token for the cluster; older unused tokens of the cluster stop working."""
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"an enrolment token lives more than 0 and at most {MAX_TTL.days} days")
    _require_cluster(session, cluster_id)
    _expire_unused_tokens(session, cluster_id, now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = EnrolmentToken(
        cluster_id=cluster_id,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=now + ttl,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return IssuedToken(cluster_id, token, row.expires_at)


def enrol_cluster(session: Session, cluster_id: str, token: str, *, now: datetime) -> Enrolment:
    """Spend the token and give the cluster a fresh broker password; its previous credential is revoked."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise EnrolmentRefused("invalid", f"the enrolment token is not valid for cluster {cluster_id!r}")
    row = session.exec(select(EnrolmentToken).where(EnrolmentToken.token_hash == token_digest(token))).first()
    if row is None or not secrets.compare_digest(row.cluster_id, cluster_id):
        raise EnrolmentRefused("invalid", f"the enrolment token is not valid for cluster {cluster_id!r}")
    if row.used_at is not None:
        raise EnrolmentRefused("used", "the enrolment token has already been used; ask for a new one")
    if row.expires_at <= now:
        raise EnrolmentRefused("expired", "the enrolment token has expired; ask for a new one")
    # Claim the token in one statement, so two requests with the same token cannot both enrol.
    claimed = session.execute(
        update(EnrolmentToken)
        .where(col(EnrolmentToken.id) == row.id, col(EnrolmentToken.used_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise EnrolmentRefused("used", "the enrolment token has already been used; ask for a new one")
    if session.get(BrokerServerAccount, cluster_id) is not None:
        raise EnrolmentRefused("invalid", f"cluster id {cluster_id!r} is taken by a server broker account")
    _revoke_active(session, cluster_id, now)
    password = new_password()
    username = cluster_username(cluster_id)
    session.add(
        ClusterCredential(cluster_id=cluster_id, username=username, broker_hash=hash_password(password), created_at=now)
    )
    session.flush()
    return Enrolment(cluster_id, username, password)


def _expire_unused_tokens(session: Session, cluster_id: str, now: datetime) -> int:
    result = session.execute(
        update(EnrolmentToken)
        .where(
            col(EnrolmentToken.cluster_id) == cluster_id,
            col(EnrolmentToken.used_at).is_(None),
            col(EnrolmentToken.expires_at) > now,
        )
        .values(expires_at=now)
    )
    return result.rowcount  # type: ignore[attr-defined]


def _revoke_active(session: Session, cluster_id: str, now: datetime) -> int:
    result = session.execute(
        update(ClusterCredential)
        .where(col(ClusterCredential.cluster_id) == cluster_id, col(ClusterCredential.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount  # type: ignore[attr-defined]


def revoke_cluster(session: Session, cluster_id: str, *, now: datetime) -> Revocation:
    """Revoke the cluster's credential and its unused tokens; the broker refuses it after the next sync."""
    _require_cluster(session, cluster_id)
    tokens = _expire_unused_tokens(session, cluster_id, now)
    credentials = _revoke_active(session, cluster_id, now)
    if credentials == 0 and tokens == 0:
        raise NoActiveCredential(f"cluster {cluster_id!r} has no active broker credential nor unused enrolment token")
    return Revocation(cluster_id, credentials, tokens)


def set_server_password(session: Session, username: str, password: str, *, now: datetime) -> None:
    """Create or replace a server broker account (full access under the topic root)."""
    check_username(username)
    if session.get(Cluster, username) is not None:
        raise InvalidBrokerAccount(f"broker username {username!r} is the id of a cluster")
    hashed = hash_password(password)
    account = session.get(BrokerServerAccount, username)
    if account is None:
        session.add(BrokerServerAccount(username=username, broker_hash=hashed, created_at=now, updated_at=now))
    else:
        account.broker_hash, account.updated_at = hashed, now
        session.add(account)
    session.flush()


def broker_accounts(session: Session) -> list[BrokerAccount]:
    """Every account the broker should know: the server's, then each cluster's active credential."""
    servers = session.exec(select(BrokerServerAccount).order_by(col(BrokerServerAccount.username))).all()
    clusters = session.exec(
        select(ClusterCredential)
        .where(col(ClusterCredential.revoked_at).is_(None))
        .order_by(col(ClusterCredential.cluster_id))
    ).all()
    return [BrokerAccount(s.username, s.broker_hash) for s in servers] + [
        BrokerAccount(c.username, c.broker_hash, c.cluster_id) for c in clusters
    ]
