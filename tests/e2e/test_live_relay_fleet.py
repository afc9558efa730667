"""A live relay on real parts: the server on SQLite, a mosquitto we start, a simulated fleet of real agents.

The relay bulletin goes out as signed `play.stream` commands; each agent relays the stream over its window
(the simulated speaker stands for the player), one cluster cannot reach the stream, one loses it once and
reconnects, and the server's figures say what each really did. Then a relay as a schedule item: pushed in
signed windows, relayed from them, counted by the statistics as the speakers relayed it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bcast.broker import LocalBroker
from bcast.demo import ServerThread, admin_headers, api_ok, listening_socket

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # about 35 s: an unreachable stream is retried over its window

FLEET = (
    "cluster_id,province,district,commune,village,lat,lon\n"
    "r-1,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.3,108.8\n"
    "r-2,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 2,15.3,108.8\n"
    "r-3,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.3,108.7\n"
    "r-4,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 2,15.3,108.7\n"
)
STREAM = "https://radio.example.vn/vov1.mp3"
RELAY_S = 60  # relayed 20 times faster by the simulated speakers: 3 s of the test's time


async def _relay(workdir: Path, broker: LocalBroker) -> tuple[dict, dict, dict]:
    from broadcast_server.api.app import create_app
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.runtime import Runtime
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.settings import get_settings
    from broadcast_server.signing.keyring import load_or_create_keyring
    from firmware_sim.fleet_sim import FleetSimulation

    http_socket = listening_socket()
    settings = get_settings(
        database_url=f"sqlite:///{workdir / 'bcast.sqlite3'}",
        audio_dir=workdir / "audio",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        public_url=f"http://127.0.0.1:{http_socket.getsockname()[1]}",
        signing_key_file=workdir / "signing-keys.json",
    )
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    import_fleet(engine, parse_fleet(decode_fleet_bytes(FLEET.encode())).rows)
    server = ServerThread(create_app(Runtime.from_settings(settings, engine=engine)), http_socket)
    server.start()
    sim = FleetSimulation(
        ["r-1", "r-2", "r-3", "r-4"],
        data_root=workdir / "agents",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        speed=20.0,
        topic_root=settings.topic_root,
        trusted_keys=load_or_create_keyring(settings.signing_key_file).trusted_public_keys,
    )
    try:
        await sim.start(connect_timeout_s=30)
        sim.clusters["r-2"].player.stream_down = {STREAM}  # its link cannot reach the station
        sim.clusters["r-3"].player.stream_drops = {STREAM: 20.0}  # dropped once, 20 s in
        async with httpx.AsyncClient(base_url=settings.public_url, timeout=30, headers=admin_headers(engine)) as api:
            relay = api_ok(
                await api.post(
                    "/api/v1/bulletins/relays",
                    json={"title": "Tiếp sóng VOV1", "stream_url": STREAM, "duration_s": RELAY_S},
                )
            )
            api_ok(await api.post(f"/api/v1/bulletins/{relay['id']}/submit"))
            api_ok(await api.post(f"/api/v1/bulletins/{relay['id']}/approve"))
            district = api_ok(await api.get("/api/v1/units", params={"level": "district"}))[0]
            broadcast = api_ok(
                await api.post(
                    "/api/v1/broadcasts", json={"bulletin_id": relay["id"], "target": {"unit_ids": [district["id"]]}}
                )
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                figures = api_ok(await api.get(f"/api/v1/statistics/broadcasts/{broadcast['id']}"))
                if figures["pending"] == 0:
                    break
                await asyncio.sleep(0.25)
        return broadcast, figures, sim.summary()
    finally:
        await sim.stop()
        server.stop()
        engine.dispose()


def test_a_relay_reaches_the_fleet_and_the_figures_say_what_each_cluster_relayed(tmp_path):
    with LocalBroker() as broker:
        broadcast, figures, truth = asyncio.run(_relay(tmp_path, broker))
    assert broadcast["targeted"] == 4
    assert (figures["played"], figures["failed"], figures["pending"]) == (3, 1, 0), figures
    [(reason, clusters)] = figures["reasons"]["failed"].items()
    assert clusters == 1 and reason.startswith("stream unreachable:") and "connection refused" in reason
    # Two full relays and one with a gap: 60 + 60 + (60 - the reconnect wait), never more than the window.
    assert 2 * RELAY_S + 40 <= figures["played_seconds"] <= 3 * RELAY_S, figures
    # What the simulated speakers really did: streams, no file, nothing with a bad hash.
    assert truth["plays_relayed"] == 4 and truth["played_bad_hash"] == 0  # r-3's two connections, r-1, r-4
    assert truth["clusters_played"] == 3


SCHEDULE = """
version: 1
timezone: Asia/Ho_Chi_Minh
programmes:
  - id: toi
    title: Chương trình buổi tối
    on_interrupt: restart
    items:
      - title: Lời giới thiệu
        text: Sau đây, Đài truyền thanh xã tiếp sóng chương trình thời sự của Đài Tiếng nói Việt Nam.
      - title: Thời sự VOV1
        stream: https://stream.example.vn/vov1.mp3
        minutes: 5
slots:
  - id: toi-hang-ngay
    programme: toi
    from: 2026-11-23
    start: "18:00"
    rule: FREQ=DAILY
    target: {units: [Quảng Ngãi/Bình Sơn]}
"""


def test_a_scheduled_relay_goes_out_signed_plays_from_the_window_and_is_counted(tmp_path):
    """A day of a programme whose second item relays VOV1 for 5 minutes, on the schedule demo (accelerated
    time, the real server pushing signed windows through mosquitto, real agents), with its emergency."""
    (tmp_path / "fleet.csv").write_text(FLEET, encoding="utf-8")
    (tmp_path / "relay.yaml").write_text(SCHEDULE, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "bcast", "demo", "--fleet", "fleet.csv", "--schedule", "relay.yaml", "--days", "1"]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    document = json.loads(completed.stdout)
    assert document["slots_played"] == document["slots_expected"] == 4 and document["duplicates"] == 0
    statistics = document["scheduled_statistics"]
    assert statistics["report"] == statistics["ground_truth"]
    for commune in statistics["report"].values():  # the spoken introduction and 300 s of relay, on both clusters
        assert commune["bulletins_played"] == 2 and 300 < commune["broadcast_seconds"] < 330
    emergency = document["emergency"]
    assert emergency["interrupted_handled_as_configured"] == sum(emergency["interrupted"].values())
