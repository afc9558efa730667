"""Open the configured database for a command: settings, schema brought up to date, an engine disposed after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from broadcast_server.db.engine import make_engine
from broadcast_server.db.migrate import upgrade
from broadcast_server.settings import Settings, get_settings


@contextmanager
def open_database(database_url: str | None = None) -> Iterator[tuple[Settings, Engine]]:
    """`database_url` None means BCAST_DATABASE_URL (or the default SQLite file)."""
    settings = get_settings(database_url=database_url)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        yield settings, engine
    finally:
        engine.dispose()
