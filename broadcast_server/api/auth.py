"""Who is calling: FastAPI dependencies for the principal (Bearer token or session cookie), permissions and CSRF.

A request with a console session cookie that changes something (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form field. Requests with a Bearer
token need none: browsers never add that header by themselves.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.service import principal_for_token
from broadcast_server.accounts.sessions import SESSION_COOKIE, session_for_cookie
from broadcast_server.api.deps import SessionDep
from broadcast_server.settings import Settings

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def client_ip(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy, run uvicorn with --proxy-headers)."""
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _resolve(session: Session, request: Request) -> tuple[Principal | None, str | None]:
    settings = getattr(getattr(request.app.state, "runtime", None), "settings", None)
    bearer = _bearer(request)
    if bearer is not None:
        return principal_for_token(session, bearer), None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = session_for_cookie(session, cookie, settings=settings)
        if found is not None:
            return found
    return None, None


async def _check_csrf(request: Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if not given and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()  # Starlette keeps the parsed form, so the route can read it again
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token (X-CSRF-Token header or csrf_token field)"
        )


async def optional_principal(request: Request, session: SessionDep) -> Principal | None:
    """The caller, or None when anonymous or the credentials are invalid; checks CSRF for cookie writes."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    principal, csrf = await run_in_threadpool(_resolve, session, request)
    request.state.principal = principal
    request.state.csrf_token = csrf
    if principal is not None and principal.via == "session" and request.method in UNSAFE_METHODS:
        assert csrf is not None
        await _check_csrf(request, csrf)
    return principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def required_principal(principal: OptionalPrincipalDep) -> Principal:
    """The caller; 401 when anonymous or with an invalid or revoked token or session."""
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in or send an API token (Authorization: Bearer bct_...)",
            headers={"WWW-Authenticate": 'Bearer realm="bcast"'},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(required_principal)]


def require(action: Action) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency giving the caller if its role may do `action`, else 403 (401 when anonymous)."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.can(action):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {principal.role.value!r} may not {action.value.replace('_', ' ')}"
            )
        return principal

    dependency.__name__ = f"require_{action.value}"
    return dependency


def csrf_token(request: Request) -> str | None:
    """The CSRF token of the request's console session, for forms in templates (None without a session)."""
    return getattr(request.state, "csrf_token", None)


def set_session_cookie(response: Response, cookie_value: str, settings: Settings) -> None:
    """Set the console session cookie: HttpOnly, SameSite=Lax, Secure when `BCAST_COOKIE_SECURE` is set."""
    response.set_cookie(
        SESSION_COOKIE,
        cookie_value,
        max_age=settings.session_lifetime_s,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure)


def forbidden(message: str) -> HTTPException:
    """403 with a precise English message (scope refusals)."""
    return HTTPException(status.HTTP_403_FORBIDDEN, message)
