"""/api/v1/users and /api/v1/tokens: accounts (administrators, in their scope) and API tokens (one's own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status

from broadcast_server.accounts.management import add_user, create_token, list_tokens, list_users, revoke_token_as
from broadcast_server.accounts.passwords import WeakPassword
from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.service import AccountError
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import SessionDep
from broadcast_server.api.schemas import MAX_ROW_ID, TokenCreate, TokenIssued, TokenOut, UserCreate, UserOut
from broadcast_server.api.token_views import token_out
from broadcast_server.models import User

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require(Action.MANAGE_ACCOUNTS))]


def _user_out(user: User) -> UserOut:
    return UserOut(**user.model_dump(exclude={"password_hash"}))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user_(body: UserCreate, session: SessionDep, principal: Admin, request: Request) -> UserOut:
    """Create an account in the administrator's scope (never above it)."""
    try:
        user = add_user(
            session,
            principal,
            username=body.username,
            password=body.password,
            role=body.role,
            scope_unit_id=body.scope_unit_id,
            display_name=body.display_name,
            ip=client_ip(request),
        )
    except (AccountError, WeakPassword) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _user_out(user)


@router.get("/users", response_model=list[UserOut])
def users(session: SessionDep, principal: PrincipalDep) -> list[UserOut]:
    """Accounts the caller manages (only itself without the right to manage accounts)."""
    return [_user_out(u) for u in list_users(session, principal)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
def create_token_(body: TokenCreate, session: SessionDep, principal: PrincipalDep, request: Request) -> TokenIssued:
    """A new API token for the caller (or, for administrators, an account in scope); shown once."""
    try:
        plain, token = create_token(session, principal, name=body.name, user_id=body.user_id, ip=client_ip(request))
    except AccountError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    owner = session.get(User, token.user_id)
    return TokenIssued(**token_out(token, owner.username if owner else "?").model_dump(), token=plain)


@router.get("/tokens", response_model=list[TokenOut])
def tokens(session: SessionDep, principal: PrincipalDep) -> list[TokenOut]:
    """The caller's tokens (administrators: those of every account in scope); never the tokens themselves."""
    return [token_out(t, u.username) for t, u in list_tokens(session, principal)]


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke(
    token_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], session: SessionDep, principal: PrincipalDep, request: Request
) -> TokenOut:
    """Revoke a token at once."""
    try:
        token = revoke_token_as(session, principal, token_id, ip=client_ip(request))
    except AccountError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    owner = session.get(User, token.user_id)
    return token_out(token, owner.username if owner else "?")
