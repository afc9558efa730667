"""Fault: the receiver box's disk is full.

The agent (`bcast agent`, a subprocess) keeps its data folder on a small disk of its own. Where the test
may mount (root with CAP_SYS_ADMIN) that disk is a real 3 MB tmpfs filled to the last byte, so every write
fails with ENOSPC; elsewhere the agent process gets RLIMIT_FSIZE 0 (prlimit), so every write that grows
a file fails with EFBIG: the same failing write() calls. While full, a play command must fail with a
reason that is reported, the agent must stay up, and once space is freed the next command must play.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from broadcast_server.domain.delivery import TERMINAL
from broadcast_server.services.dispatch import send_broadcast

pytestmark = [pytest.mark.broker, pytest.mark.slow]


class TmpfsDisk:
    """A real small filesystem; `fill()` writes a file until ENOSPC, `free()` deletes it."""

    mechanism = "a 3 MB tmpfs holding the agent's data folder, filled to ENOSPC by another file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler.bin"

    def fill(self, pid: int) -> None:
        block = b"\0" * 65536
        with open(self.filler, "ab") as out:
            while True:
                try:
                    out.write(block)
                    out.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
        with open(self.filler, "ab", buffering=0) as out:  # the last bytes that still fit
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 512)
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0")

    def free(self, pid: int) -> None:
        self.filler.unlink(missing_ok=True)


class RlimitDisk:
    """No mount allowed: the agent process may not grow any file (RLIMIT_FSIZE 0) until `free()`."""

    mechanism = "RLIMIT_FSIZE 0 on the agent process (prlimit): every write that grows a file fails with EFBIG"

    def __init__(self, root: Path) -> None:
        self.root = root

    def fill(self, pid: int) -> None:
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))

    def free(self, pid: int) -> None:
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


@pytest.fixture
def small_disk(tmp_path):
    root = tmp_path / "disk"
    root.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount") and not os.environ.get("BCAST_RELIABILITY_NO_MOUNT"):
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0777", "tmpfs", str(root)], capture_output=True
            ).returncode
            == 0
        )
    try:
        yield TmpfsDisk(root) if mounted else RlimitDisk(root)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_agent_disk_full(
    tmp_path,
    broker,
    topic_root,
    origin,
    seeded,
    server_runtime,
    agent_process,
    small_disk,
    fault_row,
    fault_table,
    rounds,
    duplicates,
    until,
):
    cluster_id = "df-001"
    db = seeded([cluster_id])
    runtime = server_runtime(db.database_url, broker, topic_root, origin.base_url)
    data_dir = small_disk.root / "agent"
    agent = agent_process(cluster_id, data_dir, broker, topic_root).start()
    until(lambda: db.online(cluster_id), 60, f"agent online: {agent.tail()}")
    pid = agent.pid
    row = fault_row(key="disk_full", fault="Agent disk full", mechanism=small_disk.mechanism)

    def play(size_bytes: int) -> tuple[str, str, str]:
        bulletin_id, sha256 = db.bulletin(origin, size_bytes=size_bytes, duration_s=0.5)
        made = db.broadcast(bulletin_id)
        assert send_broadcast(db.engine, runtime.bus, made["broadcast_id"], origin.base_url) == 1
        until(
            lambda: all(s in TERMINAL for s in db.delivery_states(made["broadcast_id"]).values()),
            60,
            f"an outcome for the command: {agent.tail(80)}",
        )
        return made[cluster_id], sha256, db.delivery_states(made["broadcast_id"])[cluster_id]

    commands: list[tuple[str, str, str]] = [play(200_000)]  # works before the fault
    assert commands[0][2] == "played"
    refused: list[tuple[str, str, str]] = []
    for r in range(rounds):
        small_disk.fill(pid)
        refused.append(play(300_000))
        row.injected += 1
        assert agent.alive() and agent.pid == pid, agent.tail()
        small_disk.free(pid)
        fault_end = __import__("time").time()
        after = play(200_000)
        commands += [refused[-1], after]
        reports = db.reports_of(after[0])
        row.recover_s.append(min(at for _, _, at in reports) - fault_end)
        row.settle_s.append(row.recover_s[-1])
        reason = db.reports_of(refused[-1][0])
        row.notes.append(f"round {r + 1}: while full {reason[0][0]} ({reason[0][1]}); after freeing {after[2]}")
    until(lambda: not list((data_dir / "outbox").glob("*.json")), 30, "the agent's outbox is empty")
    plays = [sha for _, sha in agent.plays()]
    outcomes = {command_id: db.reports_of(command_id) for command_id, _, _ in commands}
    row.reports_made = len(commands)
    row.reports_lost = sum(1 for reports in outcomes.values() if not reports)
    played_commands = [(c, sha) for c, sha, state in commands if state == "played"]
    row.plays_expected = len(played_commands)
    row.plays_missing = sum(1 for _, sha in played_commands if sha not in plays)
    row.duplicate_plays = duplicates(plays)
    fault_table(row)
    assert row.reports_lost == 0
    assert row.duplicate_plays == 0
    assert row.plays_missing == 0
    assert agent.alive() and agent.pid == pid
    assert all(state == "failed" for _, _, state in refused), refused
    assert not any(sha in plays for _, sha, _ in refused), "a command played while the disk was full"
    assert all(state == "played" for _, _, state in commands[::2]), commands
