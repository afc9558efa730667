"""Storage adapter: migrations match the models, timestamps round-trip as UTC, engine and settings."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME as SqliteDateTime
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from broadcast_server.db.engine import make_engine, normalize_url
from broadcast_server.db.migrate import MIGRATIONS_DIR, upgrade
from broadcast_server.db.session import session_scope
from broadcast_server.db.types import NaiveDatetimeError, UTCDateTime
from broadcast_server.models import AdminUnit, Cluster, Heartbeat
from broadcast_server.settings import Settings, get_settings


def test_migrations_match_the_models(engine, database_url) -> None:
    upgrade(database_url)  # a second upgrade is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_0002_upgrades_a_0001_database_with_data_and_downgrades(database_url) -> None:
    """An existing 0001 database keeps its clusters and states through 0002, and 0002 can be undone."""
    from alembic import command

    from broadcast_server.db.migrate import make_config

    upgrade(database_url, "0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO admin_unit (id, name, level, created_at) VALUES (1, 'T', 'province', :t)"),
                {"t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
            connection.execute(
                text(
                    "INSERT INTO cluster (id, unit_id, lat, lon, created_at, updated_at) VALUES ('c', 1, 0, 0, :t, :t)"
                ),
                {"t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
            connection.execute(
                text(
                    "INSERT INTO cluster_state (cluster_id, online, seq, changed_at, last_seen_at)"
                    " VALUES ('c', :on, 7, :t, :t)"
                ),
                {"on": True, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        upgrade(database_url)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT online, seq, cause, last_heartbeat_at FROM cluster_state")).one()
            assert (bool(row[0]), row[1], row[2], row[3]) == (True, 7, None, None)
            tables = set(
                connection.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                    if connection.dialect.name == "postgresql"
                    else text("SELECT name FROM sqlite_master WHERE type = 'table'")
                ).scalars()
            )
            assert {"presence_event", "stats_unit_day", "presence_cluster_day"} <= tables
        engine.dispose()
        with engine.connect() as connection:
            config = make_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
            connection.commit()
            assert connection.execute(text("SELECT seq FROM cluster_state")).scalar_one() == 7
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
    finally:
        engine.dispose()


def test_migration_files_import_nothing_from_the_app() -> None:
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        modules = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                modules.add((node.module or "").split(".")[0])
        assert modules <= {"alembic", "sqlalchemy", "collections", "typing", "__future__"}, path.name


def test_utc_datetimes_round_trip(engine) -> None:
    hanoi = timezone(timedelta(hours=7))
    sent = datetime(2026, 3, 1, 6, 30, 15, 123456, tzinfo=hanoi)
    with session_scope(engine) as session:
        heartbeat = Heartbeat(cluster_id="c-1", sent_at=sent, seq=3, uptime_s=12.5)
        session.add(heartbeat)
        session.flush()
        heartbeat_id = heartbeat.id

    with Session(engine) as session:
        stored = session.get(Heartbeat, heartbeat_id)
        assert stored is not None
        assert stored.sent_at == sent
        assert stored.sent_at.utcoffset() == timedelta(0)
        assert stored.sent_at == datetime(2026, 2, 28, 23, 30, 15, 123456, tzinfo=UTC)
        assert stored.received_at.utcoffset() == timedelta(0)
        # Comparisons in SQL use the UTC instant too.
        found = session.exec(select(Heartbeat).where(Heartbeat.sent_at > datetime(2026, 2, 28, 23, tzinfo=UTC)))
        assert [row.id for row in found] == [heartbeat_id]


def test_sqlite_stores_naive_utc(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'raw.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            session.add(
                Heartbeat(
                    cluster_id="c-1",
                    sent_at=datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=7))),
                    seq=0,
                    uptime_s=0,
                )
            )
        with engine.connect() as connection:
            raw = connection.exec_driver_sql("SELECT sent_at FROM heartbeat").scalar_one()
        assert raw.startswith("2026-01-01 00:00:00")
    finally:
        engine.dispose()


@given(
    instant=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    offset_min=st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_sqlite_binds_the_text_sqlalchemy_would(instant: datetime, offset_min: int) -> None:
    """UTCDateTime's one-step SQLite binding writes exactly what SQLAlchemy's two generic steps write."""
    dialect = sqlite.dialect()
    value = instant.astimezone(timezone(timedelta(minutes=offset_min)))
    generic = SqliteDateTime().bind_processor(dialect)(UTCDateTime().process_bind_param(value, dialect))
    assert UTCDateTime().bind_processor(dialect)(value) == generic


def test_naive_datetimes_are_refused(engine) -> None:
    with pytest.raises(StatementError) as caught:
        with session_scope(engine) as session:
            session.add(Heartbeat(cluster_id="c-1", sent_at=datetime(2026, 1, 1), seq=0, uptime_s=0))
    assert isinstance(caught.value.orig, NaiveDatetimeError)


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError):
        with session_scope(engine) as session:
            session.add(Cluster(id="c-1", unit_id=12345, lat=0, lon=0))
    with Session(engine) as session:
        assert session.exec(select(AdminUnit)).all() == []


def test_sqlite_engine_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deeper' / 'dir' / 'x.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "deeper" / "dir" / "x.sqlite3").exists()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg3(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_settings_defaults_and_overrides(monkeypatch) -> None:
    for name in ("BCAST_DATABASE_URL", "BCAST_MQTT_PORT", "BCAST_AUDIO_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("bcast.sqlite3")
    assert Path(settings.audio_dir).name == "audio"
    assert Path(settings.database_url.removeprefix("sqlite:///")).parent == Path(settings.audio_dir).parent
    assert (settings.mqtt_host, settings.mqtt_port, settings.topic_root) == ("127.0.0.1", 1883, "bcast")
    assert (settings.command_ttl_s, settings.heartbeat_interval_s, settings.target_lufs) == (600, 60, -16.0)
    assert settings.mqtt_username is None and settings.public_url == "http://127.0.0.1:8000"

    monkeypatch.setenv("BCAST_MQTT_PORT", "8883")
    monkeypatch.setenv("BCAST_DATABASE_URL", "sqlite:///from-env.db")
    assert get_settings().mqtt_port == 8883
    assert get_settings(database_url=None).database_url == "sqlite:///from-env.db"
    assert get_settings(database_url="sqlite:///cli.db").database_url == "sqlite:///cli.db"
    assert isinstance(get_settings(), Settings)
