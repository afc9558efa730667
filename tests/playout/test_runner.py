"""The schedule runner on an accelerated clock: plays what the planner previews, on disk, offline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from speaker_agent.clock import AcceleratedClock, parse_time
from speaker_agent.player import PlayOutcome, SimulatedPlayer
from speaker_agent.playout import AudioRef, Entry, Item, StreamRef, plan
from speaker_agent.playout.runner import Preempted, RelayOutcome, ScheduleRunner
from speaker_agent.playout.store import ScheduleStore

T0 = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
SPEED = 600.0  # ten virtual minutes per real second


class LoudspeakerPort:
    """The agent's side of the runner contract: one lock, and a way for a test to cut in like an emergency."""

    def __init__(self, player: SimulatedPlayer, clock: AcceleratedClock) -> None:
        self.player, self.clock = player, clock
        self.lock = asyncio.Lock()
        self.current: asyncio.Task | None = None
        self.relays: list[tuple[str, float, float]] = []  # (url, duration_s, start_s) of each relay asked for

    async def play_scheduled(self, path: Path, duration_s: float, label: str, start_s: float = 0.0) -> PlayOutcome:
        return await self._hold(self.player.play(path, duration_s, label=label, start_s=start_s))

    async def relay_scheduled(self, url: str, duration_s: float, label: str, start_s: float = 0.0) -> RelayOutcome:
        """One connection, no reconnects (the agent's loop is tested in tests/agent): what the runner asks."""
        self.relays.append((url, duration_s, start_s))
        outcome = await self._hold(self.player.play_stream(url, duration_s - start_s, label=label))
        return RelayOutcome(outcome.started_at, outcome.ended_at, outcome.played_s, outcome.completed)

    async def _hold(self, sound) -> PlayOutcome:
        async with self.lock:
            started = self.clock.now()
            self.current = asyncio.ensure_future(sound)
            try:
                return await self.current
            except asyncio.CancelledError:
                if self.current.cancelled() and not asyncio.current_task().cancelling():
                    raise Preempted((self.clock.now() - started).total_seconds(), started) from None
                raise
            finally:
                self.current = None


def item(title: str, seconds: float) -> Item:
    return Item(title, AudioRef(f"http://h/{title}", "0" * 64, 1, seconds))


def relay(title: str, seconds: float) -> Item:
    return Item(title, stream=StreamRef(f"http://live.example.vn/{title}.mp3", seconds))


@pytest.fixture
def setup(tmp_path):
    clock = AcceleratedClock(T0 - timedelta(minutes=1), SPEED)
    audio = tmp_path / "a.audio"
    audio.write_bytes(b"x")
    player = SimulatedPlayer(clock=clock, cluster_id="c")  # the clock is already accelerated
    reports: list[tuple[str, str, dict]] = []
    store = ScheduleStore.load(tmp_path / "schedule.json")

    async def fetch(ref: AudioRef) -> Path:
        assert isinstance(ref, AudioRef), f"only files are fetched, not {ref!r}"
        return audio

    port = LoudspeakerPort(player, clock)
    runner = ScheduleRunner(store, clock, port, fetch, lambda cid, status, **f: reports.append((cid, status, f)))
    return clock, player, reports, store, runner, port


async def run_for(runner: ScheduleRunner, clock: AcceleratedClock, virtual_s: float) -> None:
    task = asyncio.ensure_future(runner.run())
    await asyncio.sleep(clock.wall_seconds(virtual_s))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_plays_what_the_preview_says_and_survives_a_restart(setup, tmp_path):
    clock, player, reports, store, runner, _ = setup
    entries = [
        Entry("morning@1", T0, "Sáng", (item("a", 60), item("b", 60))),
        Entry("news@1", T0 + timedelta(seconds=30), "Tin", (item("n", 30),), layer="insert"),
    ]
    store.replace(1, T0 + timedelta(hours=2), entries)
    preview = plan(entries, start=T0 - timedelta(minutes=1), end=T0 + timedelta(hours=2))
    await run_for(runner, clock, 600)
    played = [(r[0], r[1]) for r in reports]
    assert played == [(f"{p.entry_id}#{p.item_index}", "played") for p in preview]
    assert [rec.completed for rec in player.log] == [True, True, True]
    # What was played is on disk: a restarted agent (new store, same file) plays nothing twice.
    again = ScheduleStore.load(tmp_path / "schedule.json")
    assert again.done == {(p.entry_id, p.item_index) for p in preview}
    assert plan(again.entries, start=clock.now(), end=again.window_end, done=again.done) == []


async def test_an_airing_long_past_is_reported_missed_not_played(setup):
    clock, player, reports, store, runner, _ = setup
    store.replace(1, T0 + timedelta(hours=2), [Entry("old@1", T0 - timedelta(hours=1), "Cũ", (item("x", 10),))])
    await run_for(runner, clock, 60)
    assert reports == [("old@1#0", "missed", reports[0][2])] and player.log == []


@pytest.mark.parametrize(("policy", "expected_completed_plays"), [("drop", 1), ("restart", 2), ("resume", 2)])
async def test_interrupted_items_follow_the_programme_policy(setup, policy, expected_completed_plays):
    clock, player, reports, store, runner, port = setup
    entry = Entry("e@1", T0, "E", (item("long", 300), item("next", 60)), on_interrupt=policy)
    store.replace(1, T0 + timedelta(hours=2), [entry])
    task = asyncio.ensure_future(runner.run())
    while port.current is None:
        await asyncio.sleep(0.001)
    await asyncio.sleep(clock.wall_seconds(100))
    port.current.cancel()  # what the agent does when an emergency arrives
    await asyncio.sleep(clock.wall_seconds(900))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    statuses = [(cid, status) for cid, status, _ in reports]
    assert statuses[0] == ("e@1#0", "stopped")
    assert sum(1 for r in player.log if r.completed) == expected_completed_plays
    if policy == "resume":
        resumed = next(f for cid, s, f in reports if cid == "e@1#0" and s == "played")
        assert resumed["played_s"] == pytest.approx(300, abs=15)  # the rest, not the whole item again
        assert player.log[1].played_s < 250
        assert player.log[1].start_s == pytest.approx(100, abs=15)  # the speaker began where it was cut
    if policy == "restart":
        assert player.log[1].played_s == 300 and player.log[1].start_s == 0


async def test_prefetch_fetches_the_files_of_the_window_and_no_stream(tmp_path):
    clock = AcceleratedClock(T0, SPEED)
    store = ScheduleStore.load(tmp_path / "schedule.json")
    fetched: list[object] = []

    async def fetch(ref: AudioRef) -> Path:
        fetched.append(ref)
        return tmp_path / "a.audio"

    runner = ScheduleRunner(store, clock, None, fetch, lambda *a, **f: None)
    news, music = item("news", 30), Item("music", AudioRef("http://h/m", "1" * 64, 1, 60))
    entries = [
        Entry("vov@1", T0, "Thời sự", (relay("vov1", 1800), news)),
        Entry("toi@1", T0 + timedelta(hours=1), "Tối", (music, relay("vov2", 600), news)),
    ]
    store.replace(1, T0 + timedelta(hours=2), entries)
    await runner.prefetch()
    assert fetched == [news.audio, music.audio]  # each file once, no stream


async def test_a_relay_item_starts_when_the_file_before_it_ends(setup):
    clock, player, reports, store, runner, port = setup
    store.replace(1, T0 + timedelta(hours=2), [Entry("e@1", T0, "E", (item("intro", 60), relay("vov1", 300)))])
    await run_for(runner, clock, 600)
    assert [(cid, status) for cid, status, _ in reports] == [("e@1#0", "played"), ("e@1#1", "played")]
    intro, vov = reports[0][2], reports[1][2]
    gap = (parse_time(vov["started_at"]) - parse_time(intro["ended_at"])).total_seconds()
    assert 0 <= gap < 30 and vov["late_s"] < 30  # at 600x, 30 virtual seconds are 50 ms of bookkeeping
    assert vov["played_s"] == pytest.approx(300, abs=1) and "reason" not in vov
    assert port.relays == [("http://live.example.vn/vov1.mp3", 300, 0.0)]
    assert [(r.file, r.completed) for r in player.log][1] == ("http://live.example.vn/vov1.mp3", True)


@pytest.mark.parametrize("policy", ["drop", "restart", "resume"])
async def test_an_interrupted_relay_item_follows_the_programme_policy(setup, policy):
    clock, player, reports, store, runner, port = setup
    store.replace(1, T0 + timedelta(hours=2), [Entry("e@1", T0, "E", (relay("vov1", 300),), on_interrupt=policy)])
    task = asyncio.ensure_future(runner.run())
    for _ in range(2000):
        if port.current is not None:
            break
        await asyncio.sleep(0.001)
    await asyncio.sleep(clock.wall_seconds(100))
    port.current.cancel()  # what the agent does when an emergency arrives
    await asyncio.sleep(clock.wall_seconds(600))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cut = reports[0][2]
    assert (reports[0][0], reports[0][1]) == ("e@1#0", "stopped") and 0 < cut["played_s"] < 250
    assert player.log[0].played_s == pytest.approx(cut["played_s"], abs=5) and not player.log[0].completed
    offsets = [start_s for _, _, start_s in port.relays]
    if policy == "drop":
        assert offsets == [0.0] and len(reports) == 1
        return
    again = reports[1][2]
    assert (reports[1][0], reports[1][1]) == ("e@1#0", "played")
    if policy == "restart":
        assert offsets == [0.0, 0.0] and player.log[1].played_s == 300  # the whole relay again
        assert again["played_s"] == pytest.approx(300, abs=1)
    else:  # resume: only what is left of its duration, and the report counts both parts
        assert offsets == [0.0, pytest.approx(cut["played_s"], abs=0.01)]
        assert player.log[1].played_s == pytest.approx(300 - cut["played_s"], abs=1)
        assert again["played_s"] == pytest.approx(300, abs=1)
