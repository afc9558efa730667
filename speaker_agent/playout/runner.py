"""Plays the stored schedule window on time, with or without a network, and reports every item.

The runner asks the shared planner what comes next, waits for it, plays it through the agent (which
owns the loudspeaker and lets emergencies cut in), and records it as done on disk. A new window or an
interruption makes it plan again from the current time, so what it plays is what `plan()` previews.
A live relay item (`stream`) is relayed by the agent for its duration from when it starts: nothing to
fetch ahead; its resume offset is the seconds already relayed, as a file's is the seconds already played.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from mqtt_contract.times import isoformat
from speaker_agent.clock import Clock
from speaker_agent.player import PlayerError, PlayOutcome
from speaker_agent.playout.plan import AudioRef, Entry, PlannedPlay, plan
from speaker_agent.playout.store import ScheduleStore

log = logging.getLogger(__name__)

DEFAULT_MAX_LATE_S = 900.0  # an airing not begun 15 minutes after it was due is reported missed


class Preempted(Exception):
    """The item was cut short by an emergency or a stop; `played_s` of it had played."""

    def __init__(self, played_s: float, started_at: datetime) -> None:
        super().__init__(f"preempted after {played_s:.1f} s")
        self.played_s = played_s
        self.started_at = started_at


@dataclass(frozen=True)
class RelayOutcome(PlayOutcome):
    """A scheduled relay that relayed something; `reason` names its drops (None when there were none)."""

    reason: str | None = None


class Speaker(Protocol):
    async def play_scheduled(self, path: Path, duration_s: float, label: str, start_s: float = 0.0) -> PlayOutcome:
        """Play the file from `start_s` under the loudspeaker lock; raise Preempted if an emergency or stop
        cuts it."""

    async def relay_scheduled(self, url: str, duration_s: float, label: str, start_s: float = 0.0) -> RelayOutcome:
        """Relay the stream for `duration_s - start_s` seconds from when the loudspeaker is free, reconnecting
        after drops; raise Preempted if an emergency or stop cuts it, PlayerError if nothing could be relayed."""


Report = Callable[..., Any]  # report(command_id, status, **fields)
Fetch = Callable[[AudioRef], Awaitable[Path]]


def item_command_id(key: tuple[str, int]) -> str:
    """The id reports carry for a scheduled item: '<entry id>#<item index>'."""
    return f"{key[0]}#{key[1]}"


class ScheduleRunner:
    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        speaker: Speaker,
        fetch: Fetch,
        report: Report,
        *,
        max_late_s: float = DEFAULT_MAX_LATE_S,
    ) -> None:
        self.store = store
        self.clock = clock
        self.speaker = speaker
        self.fetch = fetch
        self.report = report
        self.max_late_s = max_late_s
        self.changed = asyncio.Event()
        self._resume_offset: dict[tuple[str, int], float] = {}

    def notify(self) -> None:
        """The window changed: plan again."""
        self.changed.set()

    async def prefetch(self) -> None:
        """Download every file of the window ahead of time, so a later network cut does not matter; a live
        relay has nothing to download."""
        seen: set[str] = set()
        for entry in self.store.entries:
            for item in entry.items:
                if item.audio is None or item.audio.sha256 in seen:
                    continue
                seen.add(item.audio.sha256)
                with contextlib.suppress(Exception):
                    await self.fetch(item.audio)

    async def run(self) -> None:
        while True:
            self.changed.clear()
            now = self.clock.now()
            self._report_missed(now)
            end = self.store.window_end or now
            plays = plan(self.store.entries, start=now, end=end, done=self.store.done) if end > now else []
            if not plays:
                await self._wait_for_change(None)
                continue
            upcoming = plays[0]
            if not await self._wait_until(upcoming.start):
                continue
            await self._play(upcoming)

    def _entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.store.entries if e.id == entry_id), None)

    def _report_missed(self, now: datetime) -> None:
        """Airings whose time has passed by more than max_late_s, and of which nothing played: missed."""
        for entry in self.store.entries:
            if entry.start_at + timedelta(seconds=self.max_late_s) >= now:
                continue
            keys = [(entry.id, i) for i in range(len(entry.items))]
            if any(k in self.store.done for k in keys):
                continue  # begun: the rest plays late rather than half an airing going missing
            for key in keys:
                self.report(
                    item_command_id(key),
                    "missed",
                    reason=f"not played within {self.max_late_s:.0f} s of {isoformat(entry.start_at)}",
                )
            self.store.mark_done(*keys)

    async def _wait_until(self, moment: datetime) -> bool:
        """Sleep until `moment`; False if the window changed meanwhile."""
        delay = (moment - self.clock.now()).total_seconds()
        if delay <= 0:
            return True
        return not await self._wait_for_change(delay)

    async def _wait_for_change(self, seconds: float | None) -> bool:
        """True if the window changed within `seconds` (None: wait as long as it takes)."""
        if seconds is None:
            await self.changed.wait()
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        changed = asyncio.ensure_future(self.changed.wait())
        try:
            done, _ = await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, changed):
                task.cancel()
        return changed in done

    async def _play(self, planned: PlannedPlay) -> None:
        key = planned.key
        entry = self._entry(planned.entry_id)
        command_id = item_command_id(key)
        path: Path | None = None
        if planned.audio is not None:
            try:
                path = await self.fetch(planned.audio)
            except Exception as exc:  # any download failure: report it, keep the schedule going
                self.report(command_id, "failed", reason=f"audio unavailable: {exc}"[:500])
                self.store.mark_done(key)
                return
        offset = self._resume_offset.pop(key, 0.0)
        try:
            outcome = await self._sound(planned, path, offset)
        except Preempted as cut:
            policy = entry.on_interrupt if entry else "restart"
            if policy == "drop":
                self.store.mark_done(key)
            elif policy == "resume":
                self._resume_offset[key] = offset + cut.played_s
            self.report(
                command_id,
                "stopped",
                started_at=isoformat(cut.started_at),
                played_s=round(cut.played_s, 3),
                reason=f"interrupted; on_interrupt={policy}",
            )
            return
        except PlayerError as exc:
            self.report(command_id, "failed", reason=str(exc)[:500])
            self.store.mark_done(key)
            return
        self.store.mark_done(key)
        late = max(0.0, (outcome.started_at - planned.start).total_seconds())
        fields = {"reason": outcome.reason} if isinstance(outcome, RelayOutcome) and outcome.reason else {}
        self.report(
            command_id,
            "played",
            started_at=isoformat(outcome.started_at),
            ended_at=isoformat(outcome.ended_at),
            played_s=round(outcome.played_s + offset, 3),
            late_s=round(late, 3),
            **fields,
        )

    async def _sound(self, planned: PlannedPlay, path: Path | None, offset: float) -> PlayOutcome:
        """Relay the item's stream or play its fetched file, from `offset` seconds in."""
        if planned.stream is not None:
            stream = planned.stream
            return await self.speaker.relay_scheduled(stream.url, stream.duration_s, planned.entry_id, offset)
        assert path is not None and planned.audio is not None
        return await self.speaker.play_scheduled(path, planned.audio.duration_s, planned.entry_id, offset)
