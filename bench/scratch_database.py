"""A throwaway database for one benchmark run: a SQLite file, or a PostgreSQL database dropped afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgres")


@contextlib.contextmanager
def scratch_database(backend: str, folder: Path, prefix: str = "bench") -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database (not migrated yet); drop it on the way out."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(folder) / f'{prefix}.sqlite3'}"
        return
    if backend != "postgres":
        raise ValueError(f"unknown database backend {backend!r}: one of {', '.join(BACKENDS)}")
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
