"""Fault: power loss on a receiver box in the middle of an audio download.

`bcast agent` runs as a device runs it (a subprocess, its speaker a script that logs the hash of what it
plays) and downloads from an origin slowed to 200 kB/s. It is killed with SIGKILL once part of the file
is on disk, then started again: the command was journaled before its acknowledgement, so the new process
resumes it, asks for the rest with an HTTP Range, checks the SHA-256, plays once and reports once.
"""

from __future__ import annotations

import time

import pytest

from broadcast_server.domain.delivery import TERMINAL
from broadcast_server.services.dispatch import send_broadcast

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SIZE = 600_000
CUT_AFTER = 150_000  # bytes on disk when the power goes


def test_power_loss_mid_download(
    tmp_path,
    broker,
    topic_root,
    slow_origin,
    seeded,
    server_runtime,
    agent_process,
    fault_row,
    fault_table,
    rounds,
    duplicates,
    until,
):
    cluster_id = "pl-001"
    db = seeded([cluster_id])
    runtime = server_runtime(db.database_url, broker, topic_root, slow_origin.base_url)
    data_dir = tmp_path / "device"
    agent = agent_process(cluster_id, data_dir, broker, topic_root).start()
    until(lambda: db.online(cluster_id), 60, f"agent online: {agent.tail()}")
    row = fault_row(
        key="power_loss_download",
        fault="Power loss on an agent mid-download",
        mechanism=f"SIGKILL to `bcast agent` (subprocess) with {CUT_AFTER // 1000} of {SIZE // 1000} kB on disk, "
        "origin slowed to 200 kB/s, restarted 0.5 s later",
    )
    commands: list[tuple[str, str]] = []
    for r in range(rounds):
        bulletin_id, sha256 = db.bulletin(slow_origin, size_bytes=SIZE, duration_s=1.0)
        made = db.broadcast(bulletin_id)
        command_id = made[cluster_id]
        commands.append((command_id, sha256))
        assert send_broadcast(db.engine, runtime.bus, made["broadcast_id"], slow_origin.base_url) == 1
        partial = data_dir / "cache" / "partial" / f"{sha256}.part"
        until(lambda p=partial: p.exists() and p.stat().st_size >= CUT_AFTER, 60, f"download under way: {agent.tail()}")
        agent.power_cut()
        on_disk = partial.stat().st_size
        row.injected += 1
        time.sleep(0.5)
        agent.start()
        fault_end = time.time()
        until(
            lambda b=made["broadcast_id"]: all(s in TERMINAL for s in db.delivery_states(b).values()),
            60,
            f"round {r + 1}: an outcome after the restart: {agent.tail()}",
        )
        reports = db.reports_of(command_id)
        played_at = [at for at, sha in agent.plays() if sha == sha256]
        row.recover_s.append(min(at for _, _, at in reports) - fault_end)
        row.settle_s.append(max([at for _, _, at in reports] + played_at) - fault_end)
        ranges = [q.range for q in slow_origin.requests_for(sha256) if q.range]
        row.notes.append(
            f"round {r + 1}: {on_disk} bytes on disk at the cut; after the restart asked for {ranges or 'no range'}; "
            f"outcome {[status for status, _, _ in reports]}"
        )
        assert ranges and int(ranges[-1].removeprefix("bytes=").rstrip("-")) > 0, "the download did not resume"
    until(lambda: not list((data_dir / "outbox").glob("*.json")), 30, "the agent's outbox is empty")
    plays = [sha for _, sha in agent.plays()]
    outcomes = {command_id: db.reports_of(command_id) for command_id, _ in commands}
    row.reports_made = len(commands)  # one outcome per command; the outbox is empty, so each was sent
    row.reports_lost = sum(1 for reports in outcomes.values() if not reports)
    row.plays_expected = len(commands)
    row.plays_missing = sum(1 for _, sha in commands if sha not in plays)
    row.duplicate_plays = duplicates(plays)
    extra_reports = sum(max(0, len(reports) - 1) for reports in outcomes.values())
    row.notes.append(f"reports beyond one per command: {extra_reports}")
    fault_table(row)
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    assert row.plays_missing == 0
    assert extra_reports == 0
    assert all(reports[0][0] == "played" for reports in outcomes.values()), outcomes
