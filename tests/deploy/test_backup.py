"""docker/backup.sh against the real PostgreSQL: the dump restores, the audio is copied, nothing half-written."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

BACKUP_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "backup.sh"


@pytest.fixture
def scratch_databases(postgres_admin_url: str):
    """Two empty databases (the original and the restore target), dropped afterwards."""
    import psycopg

    names = [f"bcast_backup_{secrets.token_hex(4)}", f"bcast_restore_{secrets.token_hex(4)}"]
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_one_backup_restores_and_copies_the_audio(tmp_path, postgres_admin_url, scratch_databases):
    import psycopg
    from sqlalchemy.engine import make_url

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.services.fleet_import import import_fleet

    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed")
    original, restored = scratch_databases
    admin = make_url(postgres_admin_url)
    url = admin.set(drivername="postgresql+psycopg", database=original).render_as_string(hide_password=False)
    upgrade(url)
    engine = make_engine(url)
    fleet = "cluster_id,province,district,commune,village,lat,lon\nbk-001,Tỉnh A,Huyện B,Xã C,Thôn D,15.1,108.1\n"
    import_fleet(engine, parse_fleet(decode_fleet_bytes(fleet.encode())).rows)
    engine.dispose()

    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "ab12.mp3").write_bytes(b"ID3 not really audio")
    backups = tmp_path / "backups"
    env = {
        **os.environ,
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGUSER": admin.username or "postgres",
        "PGDATABASE": original,
        "BACKUP_DIR": str(backups),
        "AUDIO_DIR": str(audio),
    }
    if admin.password:
        env["PGPASSWORD"] = admin.password
    done = subprocess.run(["sh", str(BACKUP_SCRIPT), "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    dumps = list((backups / "db").iterdir())
    assert len(dumps) == 1 and dumps[0].name.startswith("bcast-") and dumps[0].suffix == ".dump"
    assert (backups / "audio" / "ab12.mp3").read_bytes() == b"ID3 not really audio"
    assert (backups / "last-success").read_text().strip()

    restore = subprocess.run(
        ["pg_restore", "--no-owner", "-d", restored, str(dumps[0])],
        env={**env, "PGDATABASE": restored},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 0, restore.stderr
    target = admin.set(drivername="postgresql", database=restored).render_as_string(hide_password=False)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT id FROM cluster").fetchall() == [("bk-001",)]


def test_a_failed_dump_leaves_no_backup_behind(tmp_path):
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": "1",  # nothing listens there
        "PGUSER": "postgres",
        "PGDATABASE": "none",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "AUDIO_DIR": str(tmp_path / "audio"),
    }
    done = subprocess.run(["sh", str(BACKUP_SCRIPT), "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert not list((tmp_path / "backups" / "db").glob("bcast-*.dump"))
    assert not (tmp_path / "backups" / "last-success").exists()
