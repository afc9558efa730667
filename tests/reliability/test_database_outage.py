"""Fault: the database (PostgreSQL) is unreachable for a few seconds while agents report.

A TCP proxy between the server and PostgreSQL is cut: open connections are reset and new ones refused.
The MQTT side acknowledges messages on receipt, so what arrives meanwhile waits in the ingest buffer
(bounded: `MqttBus.max_buffered`); the ingest worker retries the same batch with backoff and stores
every report once the database is back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from broadcast_server.domain.delivery import TERMINAL
from broadcast_server.services.dispatch import send_broadcast
from firmware_sim.fleet_sim import FleetSimulation
from tests.reliability.conftest import settle_reports

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]

FLEET = 30
OUTAGE_S = 4.0


async def test_database_unavailable_for_a_while(
    tmp_path,
    broker,
    topic_root,
    origin,
    seeded,
    server_runtime,
    prober,
    tcp_proxy,
    postgres_database,
    fault_row,
    fault_table,
    rounds,
    until_async,
):
    direct = postgres_database
    proxy = tcp_proxy(direct.host or "127.0.0.1", direct.port or 5432)
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    ids = [f"db-{i:03d}" for i in range(FLEET)]
    db = seeded(ids, database_url=direct.render_as_string(hide_password=False))  # the test's own view
    runtime = server_runtime(via_proxy.render_as_string(hide_password=False), broker, topic_root, origin.base_url)
    sim = FleetSimulation(
        ids,
        data_root=tmp_path / "agents",
        broker=broker,
        topic_root=topic_root,
        speed=1,
        heartbeat_interval_s=1.0,
        seed=10,
    )
    row = fault_row(
        key="database_outage",
        fault="Database unavailable for a while",
        mechanism=f"TCP proxy between server and PostgreSQL cut for {OUTAGE_S:.0f} s (connections reset, new ones "
        f"refused) while {FLEET} in-process agents play, report, heartbeat each second and answer pings",
    )
    await sim.start(connect_timeout_s=60)
    probe = prober(runtime.bus, ids[0])
    broadcasts = []
    try:
        for r in range(rounds):
            bulletin_id, _ = await asyncio.to_thread(db.bulletin, origin, duration_s=1.5)
            made = await asyncio.to_thread(db.broadcast, bulletin_id)
            broadcast_id = made["broadcast_id"]
            broadcasts.append(broadcast_id)
            # Sent while the database is up; the agents play for 1.5 s and report into the outage.
            assert await asyncio.to_thread(send_broadcast, db.engine, runtime.bus, broadcast_id, origin.base_url)
            errors_before = runtime.ingest.stats.db_errors
            cut_at = time.time()
            proxy.cut()
            await asyncio.sleep(OUTAGE_S)
            stored_before = len(await asyncio.to_thread(db.stored_reports))
            proxy.restore()
            fault_end = time.time()
            row.injected += 1
            during = [rep for rep in sim.reports() if cut_at <= _unix(rep["ts"]) <= fault_end]
            row.notes.append(
                f"round {r + 1}: {len(during)} reports made during the outage, "
                f"{runtime.ingest.stats.db_errors - errors_before} failed ingest attempts"
            )
            assert runtime.ingest.stats.db_errors > errors_before, "the outage was not felt by ingest"
            await until_async(
                lambda n=stored_before: len(db.stored_reports()) > n, 60, f"round {r + 1}: ingest stores again"
            )
            row.recover_s.append(time.time() - fault_end)
            wanted = {rep["id"] for rep in during}
            await until_async(
                lambda bid=broadcast_id, wanted=wanted: (
                    wanted <= set(db.stored_reports()) and all(s in TERMINAL for s in db.delivery_states(bid).values())
                ),
                60,
                f"round {r + 1}: every report of the outage stored, every delivery has an outcome",
            )
            row.settle_s.append(time.time() - fault_end)
        probe.stop()
        made_ids = {rep["id"] for rep in sim.reports()}
        await until_async(lambda: made_ids <= set(db.stored_reports()), 60, "every report made is stored")
    finally:
        probe.stop()
        await sim.stop()
        await settle_reports(sim, db)
    stored = await asyncio.to_thread(db.stored_reports)
    row.count_fleet(sim, stored, broadcasts)
    row.notes.append(f"heartbeats dropped by a full ingest buffer: {runtime.bus.dropped_heartbeats}")
    fault_table(row)
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    assert row.plays_missing == 0


def _unix(stamp: str) -> float:
    from mqtt_contract.times import parse_time

    return parse_time(stamp).timestamp()
