"""Schema migrations with Alembic, driven from code: no alembic.ini is needed at runtime.

Developers add a revision after changing ``broadcast_server.models`` with::

    from alembic import command
    from broadcast_server.db.migrate import make_config
    command.revision(make_config("sqlite:///scratch.sqlite3"), message="...", autogenerate=True)

(on a scratch database upgraded to head first), then review the generated file by hand.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from broadcast_server.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (e.g. SQLite foreign keys that no longer match)."""


def make_config(url: str) -> Config:
    """An Alembic config for ``url`` pointing at the package's migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Kept out of the ini options: ConfigParser would treat a '%' in a password as interpolation.
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (default: the newest), creating it if needed."""
    config = make_config(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations rebuild tables; with foreign keys on, dropping the old copy would
                # cascade or fail. The PRAGMA only works outside a transaction, so set it first.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
            if sqlite:
                broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise MigrationError(f"foreign keys broken by the migration: {broken[:10]}")
    finally:
        engine.dispose()  # also drops the connection that had foreign keys off
