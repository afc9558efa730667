"""Shared fixtures: a database URL per backend (SQLite file, throwaway PostgreSQL database) and an engine.

Server packages are imported inside the fixtures, so test folders that need only the base install (the
agent's) still collect without them. PostgreSQL is at 127.0.0.1:5432 as user ``postgres`` unless
``BCAST_TEST_POSTGRES_URL`` names another maintenance database URL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Argon2 at its production cost makes account fixtures the slowest part of the suite; the tests of hashing
# itself pass their own hasher. Set before any server module is imported (subprocess servers inherit it).
os.environ.setdefault("BCAST_PASSWORD_HASH_PROFILE", "cheapest")

POSTGRES_ADMIN_URL = os.environ.get("BCAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance database URL, or a skip when no PostgreSQL server answers there."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (server extra)")
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {str(exc).strip().splitlines()[0]}")
    return POSTGRES_ADMIN_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bcast.sqlite3'}"
        return

    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"bcast_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str):
    """An engine on ``database_url`` after migrating it to head."""
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _isolated_signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers started by tests keep their signing keys in the run's temp folder, not the user's data folder."""
    previous = os.environ.get("BCAST_SIGNING_KEY_FILE")
    os.environ["BCAST_SIGNING_KEY_FILE"] = str(tmp_path_factory.mktemp("keys") / "signing-keys.json")
    yield
    if previous is None:
        os.environ.pop("BCAST_SIGNING_KEY_FILE", None)
    else:
        os.environ["BCAST_SIGNING_KEY_FILE"] = previous


@pytest.fixture(scope="session", autouse=True)
def _isolated_tts_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the test run's speech synthesis cache out of the user's cache folder (subprocesses inherit it)."""
    previous = os.environ.get("BCAST_TTS_CACHE_DIR")
    os.environ["BCAST_TTS_CACHE_DIR"] = str(tmp_path_factory.mktemp("tts-cache"))
    yield
    if previous is None:
        os.environ.pop("BCAST_TTS_CACHE_DIR", None)
    else:
        os.environ["BCAST_TTS_CACHE_DIR"] = previous


Snapshot = dict[str, list[tuple]]


@pytest.fixture
def snapshot() -> Callable[[str], Snapshot]:
    """A function returning every row of every table (Alembic's included) at a URL, ordered by key."""
    from sqlalchemy import MetaData, select

    from broadcast_server.db.engine import make_engine

    def take(url: str) -> Snapshot:
        engine = make_engine(url)
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as connection:
                return {
                    table.name: [
                        tuple(row)
                        for row in connection.execute(
                            select(table).order_by(*(table.primary_key.columns or table.columns))
                        )
                    ]
                    for table in metadata.sorted_tables
                }
        finally:
            engine.dispose()

    return take


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked slow run first: `make test` spreads files over processes (pytest-xdist,
    --dist loadfile), and a three-minute file handed out last keeps one process busy while the others idle."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within each group stays
