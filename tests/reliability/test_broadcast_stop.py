"""Dừng lượt phát, end to end: the server stops a broadcast on a fleet of real agents over the broker (the
fleet harness of this folder, without a fault).

Half the fleet is playing it, the other half has it queued behind another broadcast; after the stop
every delivery is settled 'stopped', no speaker plays it again, and the other broadcast still plays.
"""

from __future__ import annotations

import asyncio
import threading

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


class HeldPublisher:
    """The bus, holding a dispatch's commands until told to go: a dispatch still publishing at the stop."""

    def __init__(self, bus) -> None:
        self.bus = bus
        self.holding = threading.Event()
        self.go = threading.Event()

    def publish_commands(self, commands, *, timeout_s: float = 60.0) -> set[str]:
        self.holding.set()
        assert self.go.wait(30), "never released"
        return self.bus.publish_commands(commands, timeout_s=timeout_s)


async def test_plays_a_dispatch_publishes_after_the_stop_never_play(
    tmp_path, broker, topic_root, origin, seeded, server_runtime, until_async
):
    ids = [f"sl-{i:02d}" for i in range(FLEET)]
    db = seeded(ids)
    runtime = server_runtime(db.database_url, broker, topic_root, origin.base_url)
    sim = FleetSimulation(ids, data_root=tmp_path / "agents", broker=broker, topic_root=topic_root, speed=10, seed=4)
    await sim.start(connect_timeout_s=60)
    try:
        bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=30.0)
        target = (await asyncio.to_thread(db.broadcast, bulletin_id))["broadcast_id"]
        held = HeldPublisher(runtime.bus)
        dispatch = asyncio.ensure_future(asyncio.to_thread(send_broadcast, db.engine, held, target, origin.base_url))
        assert await asyncio.to_thread(held.holding.wait, 10)  # the plays are built, not yet out

        def stop() -> tuple[int, int, int]:
            with session_scope(db.engine) as session:
                result = stop_broadcast(session, runtime.bus, None, target, ttl_s=300)
            return result.never_sent, result.told, result.acknowledged

        assert await asyncio.to_thread(stop) == (FLEET, FLEET, FLEET)
        await until_async(
            lambda: all(sim.clusters[c].agent.state.stopped_broadcasts for c in ids), 30, "every stop taken"
        )
        held.go.set()  # the dispatch's plays go out after the stops
        assert await dispatch == FLEET
        await until_async(  # (the schedule pusher may have sent a schedule too: reports are picked by broadcast)
            lambda: all(any(r.get("broadcast_id") == target for r in sim.clusters[c].reports) for c in ids),
            30,
            "each play reported",
        )
        for cluster_id in ids:
            cluster = sim.clusters[cluster_id]
            assert cluster.player.log == [], cluster_id
            play_report = next(r for r in cluster.reports if r.get("broadcast_id") == target)
            assert play_report["status"] == "stopped", cluster_id
        await asyncio.sleep(0.5)  # the reports reach the database: nothing reopens a delivery
        assert set(db.delivery_states(target).values()) == {"stopped"}
    finally:
        held.go.set()
        await sim.stop()
