"""Who may open a console page: anonymous visitors go to "Đăng nhập", the others need the page's action.

The principal comes from the accounts dependencies of the API (cookie session or token, CSRF checked on
unsafe requests); the console only turns their refusals into Vietnamese pages and redirects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import optional_principal

SIGN_IN_PATH = "/login"


class SignInRequired(Exception):
    """An anonymous visitor asked for a console page: it is sent to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__(next_path)


class PageForbidden(Exception):
    """The signed-in account may not do this here; the message (Vietnamese) says why."""


class PageNotFound(LookupError):
    """What the page names does not exist; the message (Vietnamese) says what."""


class FormProblem(ValueError):
    """A form that cannot be accepted as filled in; the message (Vietnamese) says what to fix."""


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Only a path of this site, never another host ('//evil.example' or 'https://…')."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/"
    return next_path


def console_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    """The signed-in principal of a console page, else a redirect to the sign-in page."""
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path if request.method == "GET" else "/")
    request.state.principal = principal
    return principal


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]


def allowed(action: Action) -> Callable[[Principal], Principal]:
    """A dependency: the principal, if its role may do `action`; else a 403 page."""

    def check(principal: ConsolePrincipal) -> Principal:
        if not principal.can(action):
            raise PageForbidden("Tài khoản của bạn không có quyền dùng chức năng này.")
        return principal

    return check
