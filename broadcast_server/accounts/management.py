"""Account use cases on behalf of a principal: add users, issue and revoke tokens, list them; all audited.

An administrator manages the accounts whose scope lies in its own subtree and cannot create an account
above itself (an unscoped account needs an unscoped administrator). Everyone manages its own tokens.
"""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast_server.accounts.principal import Action, Principal, Role, ensure_can
from broadcast_server.accounts.scope import OutOfScope, unit_in_scope, unit_label, visible_unit_ids
from broadcast_server.accounts.service import AccountError, create_user, issue_token, revoke_token
from broadcast_server.audit.log import record
from broadcast_server.models import ApiToken, User


def _manages(session: Session, principal: Principal, user: User) -> bool:
    if principal.user_id is not None and user.id == principal.user_id:
        return True
    return principal.can(Action.MANAGE_ACCOUNTS) and unit_in_scope(session, principal, user.scope_unit_id)


def add_user(
    session: Session,
    principal: Principal,
    *,
    username: str,
    password: str,
    role: Role | str,
    scope_unit_id: int | None = None,
    display_name: str = "",
    ip: str | None = None,
) -> User:
    """Create an account inside the principal's scope (default: the principal's own scope unit)."""
    ensure_can(principal, Action.MANAGE_ACCOUNTS)
    if scope_unit_id is None:
        scope_unit_id = principal.scope_unit_id
    if not unit_in_scope(session, principal, scope_unit_id):
        raise OutOfScope(f"unit {scope_unit_id} ({unit_label(session, scope_unit_id)}) is outside your scope")
    user = create_user(
        session, username=username, password=password, role=role, scope_unit_id=scope_unit_id, display_name=display_name
    )
    record(
        session,
        principal=principal,
        action="user.create",
        object_type="user",
        object_id=str(user.id),
        detail={"username": user.username, "role": user.role, "scope_unit_id": user.scope_unit_id},
        ip=ip,
        unit_id=user.scope_unit_id,
    )
    return user


def list_users(session: Session, principal: Principal) -> list[User]:
    """Accounts the principal manages (itself only without Action.MANAGE_ACCOUNTS)."""
    if not principal.can(Action.MANAGE_ACCOUNTS):
        return [u for u in [session.get(User, principal.user_id)] if u is not None] if principal.user_id else []
    query = select(User).order_by(User.username)
    visible = visible_unit_ids(session, principal)
    if visible is not None:
        query = query.where(User.scope_unit_id.in_(sorted(visible)))  # type: ignore[union-attr]
    return list(session.exec(query))


def create_token(
    session: Session, principal: Principal, *, name: str, user_id: int | None = None, ip: str | None = None
) -> tuple[str, ApiToken]:
    """A token for the principal's own account, or (administrators) for an account in its scope."""
    user_id = user_id if user_id is not None else principal.user_id
    if user_id is None:
        raise AccountError("say which account the token is for (user_id)")
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(f"user {user_id} does not exist")
    if not _manages(session, principal, user):
        raise OutOfScope(f"user {user_id} is not yours to manage")
    plain, token = issue_token(session, user_id, name=name)
    record(
        session,
        principal=principal,
        action="token.issue",
        object_type="api_token",
        object_id=str(token.id),
        detail={"name": token.name, "user": user.username, "prefix": token.prefix},
        ip=ip,
        unit_id=user.scope_unit_id,
    )
    return plain, token


def list_tokens(session: Session, principal: Principal) -> list[tuple[ApiToken, User]]:
    """The principal's own tokens, and for administrators those of every account in its scope."""
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)  # type: ignore[arg-type]
    if not principal.can(Action.MANAGE_ACCOUNTS):
        return list(session.exec(query.where(User.id == principal.user_id)).all())
    visible = visible_unit_ids(session, principal)
    rows = session.exec(query).all()
    return [
        (token, user)
        for token, user in rows
        if visible is None or user.id == principal.user_id or user.scope_unit_id in visible
    ]


def revoke_token_as(session: Session, principal: Principal, token_id: int, *, ip: str | None = None) -> ApiToken:
    """Revoke a token the principal owns or manages."""
    token = session.get(ApiToken, token_id)
    user = session.get(User, token.user_id) if token is not None else None
    if token is None or user is None:
        raise AccountError(f"token {token_id} does not exist")
    if not _manages(session, principal, user):
        raise OutOfScope(f"token {token_id} is not yours to revoke")
    revoke_token(session, token_id)
    record(
        session,
        principal=principal,
        action="token.revoke",
        object_type="api_token",
        object_id=str(token_id),
        detail={"name": token.name, "user": user.username},
        ip=ip,
        unit_id=user.scope_unit_id,
    )
    return token
