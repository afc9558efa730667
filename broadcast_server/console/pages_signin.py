"""Đăng nhập / Đăng xuất: a session cookie for the console, with throttling after repeated failures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from broadcast_server.accounts.service import InvalidCredentials, LoginThrottled, authenticate
from broadcast_server.accounts.sessions import SESSION_COOKIE, close_session, open_session
from broadcast_server.api.auth import OptionalPrincipalDep, clear_session_cookie, client_ip, set_session_cookie
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.audit.log import record
from broadcast_server.console.access import ConsolePrincipal, safe_next
from broadcast_server.console.templating import page

router = APIRouter()


def _throttle_message(exc: LoginThrottled) -> str:
    minutes = max(1, round(exc.retry_after_s / 60))
    return f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau khoảng {minutes} phút."


@router.get("/login")
def sign_in_form(request: Request, principal: OptionalPrincipalDep, next: str = "/") -> Response:
    if principal is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", title="Đăng nhập", next_path=safe_next(next), username="", error=None)


@router.post("/login")
def sign_in(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    ip = client_ip(request)
    try:
        principal = authenticate(session, username, password, ip=ip)
    except (LoginThrottled, InvalidCredentials) as exc:
        throttled = isinstance(exc, LoginThrottled)
        return page(
            request,
            "login.html",
            status_code=429 if throttled else 401,
            title="Đăng nhập",
            next_path=safe_next(next),
            username=username,
            error=_throttle_message(exc) if throttled else "Tên đăng nhập hoặc mật khẩu không đúng.",
        )
    cookie, _csrf = open_session(session, principal, ip=ip, settings=runtime.settings)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, cookie, runtime.settings)
    return response


@router.post("/logout")
def sign_out(request: Request, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        close_session(session, cookie)
        record(
            session,
            principal=principal,
            action="logout",
            object_type="user",
            object_id=str(principal.user_id),
            ip=client_ip(request),
        )
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response
