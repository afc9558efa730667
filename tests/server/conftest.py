"""Fixtures of the server tests: the sample fleet file and a whole-database snapshot for before/after checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

HON_QUAN = Path(__file__).resolve().parents[2] / "bcast" / "data" / "hon-quan.csv"

Snapshot = dict[str, list[tuple]]


@pytest.fixture
def hon_quan_csv() -> Path:
    return HON_QUAN


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
