"""Acceptance 2 of issue 3: corrupted and truncated downloads; no corrupted file is ever played.

The simulator's HTTP transport flips a byte in the first responses some clusters get, or cuts responses
half way. Every playback the simulated speakers did is hashed as it plays: each must be the promised
audio, and every cluster ends up playing it.
"""

from __future__ import annotations

import random

import pytest

from firmware_sim.fleet_sim import FleetSimulation
from firmware_sim.scenario import parse_scenario
from speaker_agent.cache import file_sha256

pytestmark = pytest.mark.broker

ATTEMPTS = 4


async def test_corrupted_downloads_are_never_played_and_the_agent_recovers(
    tmp_path, broker, topic_root, wiretap, until
):
    ids = [f"k-{i}" for i in range(9)]
    recover_in_retries, fail_first, truncated = ids[0:3], ids[3:6], ids[6:9]
    scenario = parse_scenario(
        {
            "seed": 5,
            # 2 bad responses: the third attempt of the same command succeeds.
            # ATTEMPTS bad responses: the first command fails, the next command's download is good.
            "corrupt_downloads": {"clusters": recover_in_retries, "responses": 2},
            "truncated_downloads": {"clusters": truncated, "responses": 1},
        }
    )
    sim = FleetSimulation(
        ids,
        data_root=tmp_path,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        topic_root=topic_root,
        speed=50,
        scenario=scenario,
        agent_options={"download_attempts": ATTEMPTS, "download_backoff_s": 0.05},
    )
    sim.faults.corrupt.update(dict.fromkeys(fail_first, ATTEMPTS))
    await sim.start(connect_timeout_s=20)
    try:
        await until(lambda: all(c.agent.subscribed.is_set() for c in sim.clusters.values()), what="subscribed")
        audio = random.Random(1).randbytes(50_000)

        def reported(record: dict) -> bool:
            return all(
                any(r["command_id"] == record["commands"][cid] for r in sim.clusters[cid].reports) for cid in ids
            )

        first = await sim.dispatch(audio=audio, duration_s=2)
        await until(lambda: reported(first), timeout=60, what="first broadcast reported")
        second = await sim.dispatch(audio=audio, duration_s=2)
        await until(lambda: reported(second), timeout=60, what="second broadcast reported")

        def status(cid: str, record: dict) -> dict:
            return next(r for r in sim.clusters[cid].reports if r["command_id"] == record["commands"][cid])

        for cid in fail_first:
            failed = status(cid, first)
            assert failed["status"] == "failed" and "SHA-256" in failed["reason"]
            assert status(cid, second)["status"] == "played"  # recovered: the next good download plays
        for cid in recover_in_retries + truncated:
            assert status(cid, first)["status"] == "played"
            assert status(cid, second)["status"] == "played"

        # Ground truth: only the promised bytes ever reached a speaker.
        plays = sim.ground_truth()
        assert plays and all(p.sha256 == first["sha256"] and p.completed for p in plays)
        assert len(plays) == 2 * len(recover_in_retries) + len(fail_first) + 2 * len(truncated)
        assert sim.summary()["played_bad_hash"] == 0
        # The cache names every file by the hash of its bytes, and holds nothing half done.
        for cid in ids:
            cache = sim.clusters[cid].agent.cache
            files = list(cache.directory.glob("*.audio"))
            assert [f.name for f in files] == [f"{first['sha256']}.audio"]
            assert all(file_sha256(f) == f.stem for f in files)
            assert not list(cache.partial_dir.glob("*"))
        # The faults really happened, and truncated downloads resumed with Range rather than restarting.
        counters = sim.faults.counters()
        assert counters["corrupted_responses"] == 2 * len(recover_in_retries) + ATTEMPTS * len(fail_first)
        assert counters["truncated_responses"] == len(truncated)
        resumed = {r.cluster for r in sim.origin.requests if r.range and r.status == 206}
        assert resumed == set(truncated)
    finally:
        await sim.stop()
