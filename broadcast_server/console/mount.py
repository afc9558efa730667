"""Put the console on an app: its pages at `/`, its static files at `/static`, its Vietnamese error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from broadcast_server.console import (
    pages_audit,
    pages_bulletins,
    pages_cluster,
    pages_emergency,
    pages_fleet,
    pages_history,
    pages_home,
    pages_relay,
    pages_reports,
    pages_review,
    pages_schedule,
    pages_signin,
)
from broadcast_server.console.access import FormProblem, PageForbidden, PageNotFound, SignInRequired, sign_in_url
from broadcast_server.console.templating import page

STATIC_DIR = Path(__file__).parent / "static"
PAGES = (
    pages_signin,
    pages_home,
    pages_relay,  # before pages_bulletins: /bulletins/relay is a page, not a bulletin id
    pages_bulletins,
    pages_review,
    pages_schedule,
    pages_fleet,
    pages_cluster,
    pages_history,
    pages_reports,
    pages_emergency,
    pages_audit,
)
_HTTP_MESSAGES_VI = {
    400: "Yêu cầu không hợp lệ.",
    403: "Bạn không có quyền thực hiện thao tác này (hoặc phiên làm việc đã hết hạn: hãy tải lại trang).",
    404: "Không tìm thấy trang này.",
    405: "Thao tác này không được hỗ trợ ở đây.",
    413: "Tệp quá lớn.",
    422: "Dữ liệu gửi lên không hợp lệ.",
}


def _error_page(request: Request, status_code: int, message: str) -> Response:
    return page(request, "error.html", status_code=status_code, code=status_code, message=message)


def mount_console(app: FastAPI) -> None:
    """Include every console page and the handlers that answer their refusals in Vietnamese."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for module in PAGES:
        app.include_router(module.router, include_in_schema=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return _error_page(request, 403, str(exc))

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> Response:
        return _error_page(request, 404, str(exc))

    @app.exception_handler(FormProblem)
    async def _bad_form(request: Request, exc: FormProblem) -> Response:
        return _error_page(request, 422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """The API keeps its precise English errors; console paths get a Vietnamese page."""
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return await http_exception_handler(request, exc)
        if exc.status_code == 401:
            return RedirectResponse(sign_in_url("/"), status_code=303)
        message = _HTTP_MESSAGES_VI.get(exc.status_code, "Đã có lỗi xảy ra.")
        return _error_page(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        """A form the console did not make (a field missing or out of range): a Vietnamese page, not API JSON."""
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        return _error_page(request, 422, _HTTP_MESSAGES_VI[422])
