"""`bcast server` as a user starts it: migrates the database, connects to the broker, serves /api/v1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import inspect

from bcast.broker import LocalBroker, free_port

pytestmark = pytest.mark.broker


def test_bcast_server_migrates_and_serves_the_api(tmp_path, database_url):
    port = free_port()
    with LocalBroker() as broker:
        env = dict(
            os.environ,
            BCAST_DATABASE_URL=database_url,
            BCAST_MQTT_PORT=str(broker.port),
            BCAST_AUDIO_DIR=str(tmp_path / "audio"),
            BCAST_ADMIN_USERNAME="quantri",
            BCAST_ADMIN_PASSWORD="mat-khau-dau-tien",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bcast", "server", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(process.stdout.read().decode(errors="replace")[-2000:])
                    time.sleep(0.2)
            assert health.json() == {"status": "ok", "mqtt": True}
            paths = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").json()["paths"]
            assert "/api/v1/broadcasts" in paths
            # Writing needs an account: anonymous is refused; the first administrator (from the settings) may.
            url, body = (
                f"http://127.0.0.1:{port}/api/v1/broadcasts",
                {"bulletin_id": "nope", "target": {"unit_ids": [1]}},
            )
            assert httpx.post(url, json=body).status_code == 401
            token = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/auth/token",
                json={"username": "quantri", "password": "mat-khau-dau-tien", "name": "test"},
            ).json()["token"]
            # Writing needs valid input: an unknown bulletin is refused with a precise English message.
            refused = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 422 and "does not exist" in refused.text
        finally:
            process.terminate()
            process.wait(20)
    from broadcast_server.db.engine import make_engine

    engine = make_engine(database_url)
    try:
        assert {"cluster", "broadcast", "playback_report", "alembic_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
