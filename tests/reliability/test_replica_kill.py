"""Fault: one of two server replicas (one PostgreSQL, one broker) is killed mid-dispatch, then restarted.

Replicas split the ingest through a shared subscription and elect a leader with a PostgreSQL advisory
lock; the leader resends what a dead replica's broadcast still owes. A replica acknowledges a report to
the broker only once stored, so what the dead one held waits in its persistent session until it is back.
Each round kills the other replica, so the leader and the follower each die at least once.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest

from bcast.broker import free_port
from bcast.demo import admin_headers
from broadcast_server.domain.delivery import TERMINAL
from firmware_sim.fleet_sim import FleetSimulation
from tests.reliability.conftest import ServerProcess, settle_reports, settle_round

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]

FLEET = 60
DOWN_S = 1.0
KILL_AFTER_S = (0.0, 0.3, 0.35)  # after the API answered: before the commands go out, then while reports flow


async def test_a_replica_killed_mid_dispatch_loses_and_duplicates_nothing(
    tmp_path, broker, topic_root, origin, seeded, postgres_database, fault_row, fault_table, rounds, until_async
):
    ids = [f"rk-{i:03d}" for i in range(FLEET)]
    db = seeded(ids, database_url=postgres_database.render_as_string(hide_password=False))
    headers = admin_headers(db.engine)
    group = f"g{uuid.uuid4().hex[:6]}"
    common = dict(
        os.environ,
        BCAST_DATABASE_URL=db.database_url,
        BCAST_MQTT_HOST=broker.host,
        BCAST_MQTT_PORT=str(broker.port),
        BCAST_TOPIC_ROOT=topic_root,
        BCAST_MQTT_SHARED_GROUP=group,
        BCAST_PUBLIC_URL=origin.base_url,  # stands for the reverse proxy in front of both replicas
        BCAST_AUDIO_DIR=str(tmp_path / "audio"),
        BCAST_SIGNING_KEY_FILE=str(tmp_path / "signing-keys.json"),  # one key for the whole deployment
        BCAST_DISPATCH_SWEEP_S="1",
        BCAST_DISPATCH_GRACE_S="2",
    )
    replicas = [
        ServerProcess(
            {**common, "BCAST_MQTT_CLIENT_ID": f"bcast-{name}-{group}"}, free_port(), tmp_path / f"{name}.log"
        )
        for name in ("a", "b")
    ]
    row = fault_row(
        key="replica_kill",
        fault="One of two server replicas killed during a dispatch",
        mechanism=f"two `bcast server` replicas on PostgreSQL and one broker (shared subscription, advisory-lock "
        f"leader); SIGKILL to the replica that took POST /api/v1/broadcasts, {'/'.join(map(str, KILL_AFTER_S))} s "
        f"after it answered, restarted {DOWN_S:.0f} s later; {FLEET} in-process agents",
    )
    sim = FleetSimulation(ids, data_root=tmp_path / "agents", broker=broker, topic_root=topic_root, speed=10, seed=11)
    broadcasts: list[str] = []
    for replica in replicas:
        replica.start()
    try:
        for replica in replicas:
            await replica.healthy()
        await sim.start(connect_timeout_s=60)
        for r in range(rounds):
            victim = replicas[r % 2]
            bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=2.0)
            async with httpx.AsyncClient(base_url=victim.url, headers=headers, timeout=30) as api:
                answer = await api.post(
                    "/api/v1/broadcasts", json={"bulletin_id": bulletin_id, "target": {"cluster_ids": ids}}
                )
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(KILL_AFTER_S[r % len(KILL_AFTER_S)])
            victim.kill()
            row.injected += 1
            broadcast_id = answer.json()["id"]
            broadcasts.append(broadcast_id)
            states = await asyncio.to_thread(db.delivery_states, broadcast_id)
            row.notes.append(
                f"round {r + 1}: replica {'ab'[r % 2]} killed {KILL_AFTER_S[r % len(KILL_AFTER_S)]} s after the "
                f"answer, {sum(s == 'queued' for s in states.values())} of {FLEET} deliveries still queued, "
                f"{sum(s in TERMINAL for s in states.values())} already with an outcome"
            )
            await asyncio.sleep(DOWN_S)
            victim.start()
            await victim.healthy()
            await settle_round(row, db, broadcast_id, time.time(), r + 1)
        made_ids = {r["id"] for r in sim.reports()}
        await until_async(lambda: made_ids <= set(db.stored_reports()), 60, "every report made is stored")
    finally:
        await sim.stop()
        await settle_reports(sim, db)
        for replica in replicas:
            replica.stop()
    leads = [line for r in replicas for line in r.log_path.read_text(errors="replace").splitlines() if " leads" in line]
    row.notes.append(f"lead taken {len(leads)} times over the run")
    stored = await asyncio.to_thread(db.stored_reports)
    row.count_fleet(sim, stored, broadcasts)
    fault_table(row)
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    assert row.plays_missing == 0
    assert len(leads) >= 2  # the lead moved when its holder died
