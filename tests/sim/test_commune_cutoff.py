"""Acceptance 1 of issue 3: a commune cut off during a dispatch comes back; late or missed, per the policy.

The policy (speaker_agent.agent): a play whose `expires_at` has passed when the cluster gets it is
reported `missed` and never played; one that has not is played at once, its `played` report carrying
`late_s`. Two broadcasts go out while the island commune is cut off: one expires before the island comes
back (every island cluster reports it missed), one does not (every island cluster plays it, late). The
mainland plays both. A wiretap on the broker counts the reports: exactly the ones the agents made, none
twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from firmware_sim.fleet_sim import FleetSimulation

pytestmark = pytest.mark.broker

SHORT_EXPIRY_S = 2.0
COMMUNES = {"Xã Đảo Hòn Tre": 5, "Xã Đất Liền A": 4, "Xã Đất Liền B": 4}


def fleet() -> dict[str, str]:
    members = {}
    for number, (commune, size) in enumerate(COMMUNES.items()):
        for i in range(size):
            members[f"c{number}-{i:02d}"] = commune
    return members


@pytest.mark.parametrize("mode", ["network", "power"])
async def test_cut_off_commune_plays_late_or_reports_missed_and_no_report_is_lost_or_doubled(
    tmp_path, broker, topic_root, wiretap, until, mode
):
    communes = fleet()
    sim = FleetSimulation(
        list(communes),
        communes=communes,
        data_root=tmp_path,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        topic_root=topic_root,
        speed=50,
        agent_options={"keepalive_s": 5, "download_backoff_s": 0.05},
    )
    await sim.start(connect_timeout_s=20)
    try:
        island = sim.communes()["Xã Đảo Hòn Tre"]
        mainland = [cid for cid in communes if cid not in island]
        await until(lambda: all(c.agent.subscribed.is_set() for c in sim.clusters.values()), what="subscribed")
        await sim.cut(island, mode)

        short = await sim.dispatch(expires_in_s=SHORT_EXPIRY_S, duration_s=5)
        long = await sim.dispatch(expires_in_s=120, duration_s=5)
        await asyncio.sleep(SHORT_EXPIRY_S + 0.5)  # the storm outlasts the first broadcast
        await sim.restore(island)

        def outcome(cid: str, record: dict) -> dict | None:
            command_id = record["commands"][cid]
            found = [r for r in sim.clusters[cid].reports if r["command_id"] == command_id]
            return found[0] if found else None

        def settled() -> bool:
            every = all(outcome(cid, d) for cid in communes for d in (short, long))
            sent = all(len(c.agent.outbox) == 0 for c in sim.clusters.values())
            return every and sent and len(wiretap.snapshot()) >= len(sim.reports())

        await until(settled, timeout=60, what="every cluster reported both broadcasts")
        await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now

        for cid in mainland:
            assert outcome(cid, short)["status"] == "played"
            assert outcome(cid, long)["status"] == "played"
        for cid in island:
            missed = outcome(cid, short)
            assert missed["status"] == "missed" and "expired" in missed["reason"]
            late = outcome(cid, long)
            assert late["status"] == "played"
            # It could not start before the island came back, which was after the first one expired.
            assert late["late_s"] >= SHORT_EXPIRY_S
            # Expired on arrival: not even downloaded (a 4G link's data is not spent on it).
            short_path = "/audio/" + short["url"].rsplit("/", 1)[1]
            assert not [r for r in sim.origin.requests if r.cluster == cid and r.path == short_path]
            plays = sim.clusters[cid].player.log
            assert [(p.broadcast_id, p.completed) for p in plays] == [(long["broadcast_id"], True)]
            assert plays[0].sha256 == long["sha256"]

        # Every report the agents made reached the broker exactly once, and nothing else did.
        made = Counter(r["id"] for r in sim.reports())
        seen = Counter(r["id"] for r in wiretap.snapshot())
        assert seen == made
        assert max(seen.values()) == 1
        assert len(made) == 2 * len(communes)  # one outcome per command

        truth = sim.summary()
        assert truth["reports"] == {"missed": len(island), "played": 2 * len(mainland) + len(island)}
        assert truth["played_bad_hash"] == 0
        key = "link_cuts" if mode == "network" else "power_losses"
        assert truth["faults"][key] == len(island)
    finally:
        await sim.stop()
