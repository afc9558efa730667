"""/api/v1/auth: exchange a username and password for an API token (integrations), and "who am I"."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from broadcast_server.accounts.management import create_token
from broadcast_server.accounts.principal import Action
from broadcast_server.accounts.service import InvalidCredentials, LoginThrottled, authenticate
from broadcast_server.api.auth import PrincipalDep, client_ip
from broadcast_server.api.deps import SessionDep
from broadcast_server.api.schemas import PrincipalOut, TokenIssued, TokenRequest
from broadcast_server.api.token_views import token_out

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.post("/token", status_code=status.HTTP_201_CREATED, response_model=TokenIssued, responses={401: {}, 429: {}})
def token(body: TokenRequest, session: SessionDep, request: Request) -> TokenIssued:
    """Sign in and get a new API token (shown once). Failed attempts are throttled like console sign-ins."""
    ip = client_ip(request)
    try:
        principal = authenticate(session, body.username, body.password, ip=ip)
    except LoginThrottled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    except InvalidCredentials as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": 'Bearer realm="bcast"'}
        ) from None
    plain, row = create_token(session, principal, name=body.name, ip=ip)
    return TokenIssued(**token_out(row, principal.username).model_dump(), token=plain)


@router.get("/me", response_model=PrincipalOut)
def me(principal: PrincipalDep) -> PrincipalOut:
    """The caller's account, role, scope and permissions."""
    return PrincipalOut(
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role.value,
        scope_unit_id=principal.scope_unit_id,
        via=principal.via,
        permissions=[a.value for a in Action if principal.can(a)],
    )
