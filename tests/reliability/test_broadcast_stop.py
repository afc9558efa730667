"""Dừng lượt phát, end to end: the server stops a broadcast on a fleet of real agents over the broker (the
fleet harness of this folder, without a fault).

Half the fleet is playing it, the other half has it queued behind another broadcast; after the stop
every delivery is settled 'stopped', no speaker plays it again, and the other broadcast still plays.
"""

from __future__ import annotations

import asyncio

import pytest

from broadcast_server.db.session import session_scope
from broadcast_server.services.broadcast_stop import stop_broadcast
from broadcast_server.services.dispatch import send_broadcast
from firmware_sim.fleet_sim import FleetSimulation

pytestmark = [pytest.mark.broker]

FLEET = 12


async def test_a_broadcast_stopped_from_the_server_stops_on_every_cluster(
    tmp_path, broker, topic_root, origin, seeded, server_runtime, until_async
):
    ids = [f"st-{i:02d}" for i in range(FLEET)]
    first_half, second_half = ids[: FLEET // 2], ids[FLEET // 2 :]
    db = seeded(ids)
    runtime = server_runtime(db.database_url, broker, topic_root, origin.base_url)
    sim = FleetSimulation(ids, data_root=tmp_path / "agents", broker=broker, topic_root=topic_root, speed=10, seed=3)
    await sim.start(connect_timeout_s=60)
    try:
        other_bulletin, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=300.0)  # 30 s at speed 10
        other = (await asyncio.to_thread(db.broadcast, other_bulletin, second_half))["broadcast_id"]
        await asyncio.to_thread(send_broadcast, db.engine, runtime.bus, other, origin.base_url)
        await until_async(lambda: all(sim.clusters[c].agent.playing == other for c in second_half), 30, "other plays")

        bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=300.0)
        target = (await asyncio.to_thread(db.broadcast, bulletin_id))["broadcast_id"]
        await asyncio.to_thread(send_broadcast, db.engine, runtime.bus, target, origin.base_url)
        await until_async(lambda: all(sim.clusters[c].agent.playing == target for c in first_half), 30, "it plays")
        await until_async(
            lambda: all(len(sim.clusters[c].agent._plays) == 2 for c in second_half), 30, "it waits behind the other"
        )

        def stop() -> tuple[int, int]:
            with session_scope(db.engine) as session:
                result = stop_broadcast(session, runtime.bus, None, target, ttl_s=300)
            return result.told, result.acknowledged

        assert await asyncio.to_thread(stop) == (FLEET, FLEET)
        await until_async(
            lambda: set(db.delivery_states(target).values()) == {"stopped"}, 30, "every delivery settled stopped"
        )
        for cluster_id in first_half:  # cut while playing
            log = [(p.broadcast_id, p.completed) for p in sim.clusters[cluster_id].player.log]
            assert log == [(target, False)], cluster_id
        for cluster_id in second_half:  # dropped while waiting; the other broadcast plays on
            assert sim.clusters[cluster_id].agent.playing == other, cluster_id
            assert [p.broadcast_id for p in sim.clusters[cluster_id].player.log] == [], cluster_id
        assert set(db.delivery_states(other).values()) == {"sent"}
    finally:
        await sim.stop()
