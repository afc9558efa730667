"""Fault: `bcast server` is killed (SIGKILL) while it dispatches a broadcast, then started again.

The broadcast and its deliveries are in the database when POST /api/v1/broadcasts answers; the commands go
out after the answer. Killed at once, a little later or after the commands left, the restarted server
must send what was not sent (and nothing twice to a cluster that played it already: agents dedupe by
command id), and store every report the agents made, including those the broker kept while it was down.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter

import httpx
import pytest

from bcast.broker import free_port
from bcast.demo import admin_headers
from firmware_sim.fleet_sim import FleetSimulation
from tests.reliability.conftest import ServerProcess, settle_reports, settle_round

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FLEET = 150
DOWN_S = 1.0
KILL_AFTER_S = (0.0, 0.01, 0.03)  # after the API answered: before, while and after the commands go out


async def test_server_killed_during_a_dispatch_and_restarted(
    tmp_path, broker, topic_root, origin, seeded, fault_row, fault_table, rounds, until_async
):
    ids = [f"sk-{i:03d}" for i in range(FLEET)]
    db = seeded(ids)
    headers = admin_headers(db.engine)
    env = dict(
        os.environ,
        BCAST_DATABASE_URL=db.database_url,
        BCAST_MQTT_HOST=broker.host,
        BCAST_MQTT_PORT=str(broker.port),
        BCAST_TOPIC_ROOT=topic_root,
        BCAST_MQTT_CLIENT_ID=f"bcast-server-{uuid.uuid4().hex[:8]}",
        BCAST_PUBLIC_URL=origin.base_url,
        BCAST_AUDIO_DIR=str(tmp_path / "audio"),
    )
    server = ServerProcess(env, free_port(), tmp_path / "server.log")
    row = fault_row(
        key="server_kill",
        fault="Server killed during a dispatch and restarted",
        mechanism=f"SIGKILL to `bcast server` (subprocess, SQLite) 0-0.03 s after POST /api/v1/broadcasts answered, "
        f"started again {DOWN_S:.0f} s later; {FLEET} in-process agents",
    )
    sim = FleetSimulation(ids, data_root=tmp_path / "agents", broker=broker, topic_root=topic_root, speed=10, seed=9)
    broadcasts: list[str] = []
    server.start()
    try:
        await server.healthy()
        await sim.start(connect_timeout_s=60)
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
            for r in range(rounds):
                bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=2.0)
                answer = await api.post(
                    "/api/v1/broadcasts", json={"bulletin_id": bulletin_id, "target": {"cluster_ids": ids}}
                )
                assert answer.status_code == 201, answer.text
                await asyncio.sleep(KILL_AFTER_S[r % len(KILL_AFTER_S)])
                server.kill()
                row.injected += 1
                broadcast_id = answer.json()["id"]
                broadcasts.append(broadcast_id)
                commands = await asyncio.to_thread(db.command_ids, broadcast_id)
                received = sum(sim.clusters[c].agent.state.is_known(cmd) for c, cmd in commands.items())
                states = await asyncio.to_thread(db.delivery_states, broadcast_id)
                row.notes.append(
                    f"round {r + 1}: killed {KILL_AFTER_S[r % len(KILL_AFTER_S)]} s after the answer; "
                    f"{sum(s == 'queued' for s in states.values())} of {FLEET} deliveries still queued in the "
                    f"database, {received} commands already received by agents"
                )
                await asyncio.sleep(DOWN_S)
                server.start()
                await server.healthy()
                await settle_round(row, db, broadcast_id, time.time(), r + 1)
        made_ids = {r["id"] for r in sim.reports()}
        await until_async(lambda: made_ids <= set(db.stored_reports()), 30, "every report made is stored")
    finally:
        await sim.stop()
        await settle_reports(sim, db)
        server.stop()
    stored = await asyncio.to_thread(db.stored_reports)
    row.count_fleet(sim, stored, broadcasts)
    fault_table(row)
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    outcomes = Counter(status for _, status, _ in stored.values())
    assert row.plays_missing == 0, outcomes
