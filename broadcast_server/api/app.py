"""FastAPI application factory: the REST API under /api/v1 with its OpenAPI schema."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse

from broadcast_server.accounts.principal import NotPermitted
from broadcast_server.accounts.scope import OutOfScope
from broadcast_server.api import (
    routes_accounts,
    routes_audio,
    routes_audit,
    routes_auth,
    routes_broadcasts,
    routes_bulletins,
    routes_cap,
    routes_enrol,
    routes_fleet,
    routes_health,
    routes_schedules,
    routes_statistics,
)
from broadcast_server.api.auth import required_principal
from broadcast_server.api.body_limit import BodyLimit
from broadcast_server.runtime import Runtime

FORM_FIELDS_BYTES = 1024 * 1024  # room for a multipart upload's other fields and boundaries


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    """The app; with `manage_runtime` it starts the MQTT bus and ingest at startup and stops them after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_runtime and not runtime.started:
            runtime.start()
        yield
        if manage_runtime:
            runtime.stop()

    app = FastAPI(
        title="bcast — truyền thanh cơ sở",
        version="1",
        description="Controller for Vietnamese commune IP loudspeaker networks.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    api = APIRouter(prefix="/api/v1")
    # Every route of these needs an account or a token (401 otherwise); routes add their permission checks.
    signed_in = [Depends(required_principal)]
    for module in (
        routes_bulletins,
        routes_broadcasts,
        routes_cap,
        routes_fleet,
        routes_health,
        routes_schedules,
        routes_statistics,
        routes_accounts,
        routes_audit,
    ):
        api.include_router(module.router, dependencies=signed_in)
    api.include_router(routes_audio.router)  # agents download here (issue 8 will authorise them)
    api.include_router(routes_auth.router)  # sign-in for a token; /auth/me checks the caller itself
    api.include_router(routes_enrol.router)  # enrolment and broker credentials (issue 8)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, object]:
        bus = runtime.bus
        return {"status": "ok", "mqtt": bus is not None and bus.connected}

    app.include_router(api)
    from broadcast_server.console.mount import mount_console

    mount_console(app)  # the web console at / (sign-in page "Đăng nhập" for a visitor)
    app.add_exception_handler(NotPermitted, _forbidden)
    app.add_exception_handler(OutOfScope, _forbidden)
    # Inside the exception handlers' reach (unlike Starlette's max_body_size): a Vietnamese page in the console.
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_upload_bytes + FORM_FIELDS_BYTES)
    app.add_middleware(routes_audio.AudioFromMemory, runtime=runtime)  # an emergency's downloads, in memory
    return app


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    """A role or scope refusal from a service: 403 with its precise message."""
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_403_FORBIDDEN)
