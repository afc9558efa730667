"""Fault: the MQTT broker restarts while the server dispatches a broadcast to a fleet of 50 agents.

The broker keeps sessions across the restart (persistence, as docker/mosquitto.conf); the server and the
agents reconnect with their persistent sessions. Every cluster must play each broadcast exactly once,
and every report an agent made must be stored exactly once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from broadcast_server.domain.delivery import TERMINAL
from broadcast_server.services.dispatch import send_broadcast
from firmware_sim.fleet_sim import FleetSimulation
from tests.reliability.conftest import settle_reports

pytestmark = [pytest.mark.broker, pytest.mark.slow]

FLEET = 50
DOWN_S = 1.0
# When the broker goes down, counted from the start of the dispatch: while commands are published, while
# agents download and play, while their reports come back.
OFFSETS_S = (0.0, 0.05, 0.3)


async def test_broker_restart_during_a_dispatch(
    tmp_path,
    broker,
    topic_root,
    origin,
    seeded,
    server_runtime,
    prober,
    fault_row,
    fault_table,
    rounds,
    until_async,
):
    ids = [f"br-{i:03d}" for i in range(FLEET)]
    db = seeded(ids)
    runtime = server_runtime(db.database_url, broker, topic_root, origin.base_url)
    sim = FleetSimulation(ids, data_root=tmp_path / "agents", broker=broker, topic_root=topic_root, speed=10, seed=8)
    row = fault_row(
        key="broker_restart",
        fault="Broker restart during a dispatch",
        mechanism=f"mosquitto stopped (SIGTERM) and started again on the same port, {DOWN_S:.0f} s down, "
        f"persistence on; {FLEET} in-process agents, server in-process",
    )
    await sim.start(connect_timeout_s=60)
    probe = prober(runtime.bus, ids[0])
    broadcasts = []
    acknowledged_all: list[int] = []
    try:
        for r in range(rounds):
            bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=2.0)
            made = await asyncio.to_thread(db.broadcast, bulletin_id)
            broadcast_id = made["broadcast_id"]
            broadcasts.append(broadcast_id)
            sending = asyncio.create_task(
                asyncio.to_thread(send_broadcast, db.engine, runtime.bus, broadcast_id, origin.base_url)
            )
            await asyncio.sleep(OFFSETS_S[r % len(OFFSETS_S)])
            before = await asyncio.to_thread(db.delivery_states, broadcast_id)
            await sim.restart_broker(DOWN_S)
            fault_end = time.time()
            row.injected += 1
            acknowledged = await sending
            acknowledged_all.append(acknowledged)
            row.notes.append(
                f"round {r + 1}: broker stopped {OFFSETS_S[r % len(OFFSETS_S)]} s into the dispatch, "
                f"{sum(s in TERMINAL for s in before.values())} of {FLEET} outcomes stored by then; "
                f"{acknowledged} commands acknowledged"
            )
            await until_async(
                lambda bid=broadcast_id: all(s in TERMINAL for s in db.delivery_states(bid).values()),
                90,
                f"round {r + 1}: every delivery has an outcome",
            )
            settled = time.time() - fault_end
            stored = await asyncio.to_thread(db.stored_reports)
            after = [at for _, _, at in stored.values() if at >= fault_end]
            row.recover_s.append(min(after) - fault_end if after else settled)
            row.settle_s.append(settled)
        probe.stop()
        made_ids = {r["id"] for r in sim.reports()}
        await until_async(lambda: made_ids <= set(db.stored_reports()), 30, "every report made is stored")
    finally:
        probe.stop()
        await sim.stop()
        await settle_reports(sim, db)
    stored = await asyncio.to_thread(db.stored_reports)
    row.count_fleet(sim, stored, broadcasts)
    fault_table(row)
    final = {b: await asyncio.to_thread(db.delivery_states, b) for b in broadcasts}
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    assert row.plays_missing == 0, final
    # Commands queued by the server while the broker was down count as sent once the broker has them.
    assert acknowledged_all == [FLEET] * len(broadcasts)
    assert all(set(states.values()) == {"played"} for states in final.values()), final
