"""FastAPI application factory: the REST API under /api/v1 with its OpenAPI schema."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from broadcast_server.api import (
    routes_audio,
    routes_broadcasts,
    routes_bulletins,
    routes_fleet,
    routes_health,
    routes_statistics,
)
from broadcast_server.runtime import Runtime


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
    for module in (routes_bulletins, routes_broadcasts, routes_audio, routes_fleet, routes_health, routes_statistics):
        api.include_router(module.router)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, object]:
        bus = runtime.bus
        return {"status": "ok", "mqtt": bus is not None and bus.connected}

    app.include_router(api)
    return app
