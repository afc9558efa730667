"""What the agent keeps on its card is flushed before it counts: file, then rename, then folder (power cuts).

A rename without fsync is atomic but not durable; these tests watch ``os.fsync`` and check that each of
the agent's files reaches it before ``os.replace`` and that its folder does after, and that a card that
refuses the flush leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from speaker_agent.durable_file import write_durably
from speaker_agent.outbox import Outbox
from speaker_agent.playout.store import ScheduleStore
from speaker_agent.state import AgentState


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order of events: 'fsync <path>' (what the descriptor names) and 'replace <target>'."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(f"replace {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _command(command_id: str) -> dict:
    return {"v": 1, "id": command_id, "type": "stop", "issued_at": "2026-12-06T00:00:00Z"}


def test_an_accepted_command_is_on_the_card_before_it_counts(tmp_path: Path, flushes: list[str]) -> None:
    state = AgentState(tmp_path / "state.json")
    assert state.accept(_command("c-1"))
    assert flushes == [f"fsync {tmp_path / 'state.tmp'}", f"replace {tmp_path / 'state.json'}", f"fsync {tmp_path}"]
    assert "c-1" in json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["pending"]


def test_a_report_waiting_for_the_broker_is_flushed(tmp_path: Path, flushes: list[str]) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put({"v": 1, "id": "r-1", "command_id": "c-1", "status": "played"})
    folder = tmp_path / "outbox"
    assert flushes == [f"fsync {folder / 'r-1.tmp'}", f"replace {folder / 'r-1.json'}", f"fsync {folder}"]
    assert [r["id"] for r in Outbox(folder).pending()] == ["r-1"]


def test_the_schedule_and_what_played_of_it_are_flushed(tmp_path: Path, flushes: list[str]) -> None:
    store = ScheduleStore.load(tmp_path / "schedule.json")
    store.mark_done(("entry-1", 0))
    assert flushes == [
        f"fsync {tmp_path / 'schedule.tmp'}",
        f"replace {tmp_path / 'schedule.json'}",
        f"fsync {tmp_path}",
    ]
    assert ScheduleStore.load(tmp_path / "schedule.json").done == {("entry-1", 0)}


def test_a_card_that_refuses_the_flush_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = AgentState(tmp_path / "state.json")
    assert state.accept(_command("c-1"))
    before = (tmp_path / "state.json").read_bytes()

    def refuse(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", refuse)
    assert not state.accept(_command("c-2"))  # not taken: the broker will deliver it again
    assert "Input/output error" in (state.save_error or "")
    assert (tmp_path / "state.json").read_bytes() == before
    assert "c-2" not in state.pending


def test_a_secret_is_never_readable_by_others_even_through_an_old_temp_file(tmp_path: Path) -> None:
    leftover = tmp_path / "mqtt-credentials.tmp"  # left by a crash, with a loose mode
    leftover.write_text("old")
    leftover.chmod(0o644)
    write_durably(tmp_path / "mqtt-credentials.json", '{"password": "p"}', mode=0o600)
    assert (tmp_path / "mqtt-credentials.json").stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(OSError):
        write_durably(tmp_path / "state.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_stopped_broadcasts_are_kept_until_their_stop_expires_and_bounded(tmp_path: Path) -> None:
    from speaker_agent.state import REMEMBERED_STOPS

    state = AgentState(tmp_path / "state.json")
    state.remember_stopped("b-old", until=1_000.0, now=500.0)
    state.remember_stopped("b-new", until=5_000.0, now=500.0)
    again = AgentState(tmp_path / "state.json")  # after a power cut
    assert again.was_stopped("b-old", now=999.0) and again.was_stopped("b-new", now=999.0)
    assert not again.was_stopped("b-old", now=1_001.0) and not again.was_stopped("b-other", now=999.0)
    again.remember_stopped("b-third", until=9_000.0, now=2_000.0)  # the expired one is forgotten
    assert set(AgentState(tmp_path / "state.json").stopped_broadcasts) == {"b-new", "b-third"}
    for i in range(REMEMBERED_STOPS + 5):
        again.remember_stopped(f"b-{i}", until=10_000.0 + i, now=2_000.0)
    assert len(again.stopped_broadcasts) == REMEMBERED_STOPS
    assert "b-new" not in again.stopped_broadcasts and f"b-{REMEMBERED_STOPS + 4}" in again.stopped_broadcasts
