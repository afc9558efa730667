"""Send each cluster its schedule window ahead of time, and again whenever it changes or runs short."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import Cluster, ClusterSchedule, Programme, Slot, TargetGroup
from broadcast_server.scheduling.airings import Airing, record_windows, slot_airings
from broadcast_server.scheduling.catalog import load_resolved_slots
from broadcast_server.scheduling.windows import ResolvedSlot, slot_entries
from broadcast_server.services.dispatch import CommandPublisher
from mqtt_contract import Channel, InvalidMessage, validate
from mqtt_contract.times import isoformat
from speaker_agent.playout import Item
from speaker_agent.playout.store import entry_to_message

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)
REVISION_CHECK_S = 2.0  # how soon a change saved by another process reaches the clusters
# A window with less than half its length left is sent again, extended.
# A new window still holds the last hour's airings, so one that is playing (or queued behind another)
# when the window is replaced carries on; the agent keeps its record of what it already played.
LOOKBACK = timedelta(hours=1)


def schedule_command(version: int, entries: list[dict[str, Any]], window_end: datetime, now: datetime) -> dict:
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "schedule",
        "issued_at": isoformat(now),
        "expires_at": isoformat(window_end),
        "schedule": {"version": version, "window_end": isoformat(window_end), "entries": entries},
    }


def push_schedules(
    engine: Engine, publisher: CommandPublisher, public_url: str, now: datetime, *, window: timedelta = WINDOW
) -> int:
    """Publish a window to every cluster whose schedule changed or whose window runs short; return how many.

    "Changed" is judged on the slots that reach the cluster (rules, times, items, policies), not on the
    window's contents, which slide with time: otherwise every airing entering the window would resend it.
    """
    end = now + window
    with session_scope(engine) as session:
        slots = load_resolved_slots(session, public_url)
        cluster_ids = list(session.exec(select(Cluster.id)))
        last = {c.cluster_id: c for c in session.exec(select(ClusterSchedule))}
    slots_of: dict[str, list[ResolvedSlot]] = {}
    for slot in slots:
        for cluster_id in slot.cluster_ids:
            slots_of.setdefault(cluster_id, []).append(slot)
    entries_of_slot: dict[str, list[dict[str, Any]]] = {}
    airings_of_slot: dict[str, list[Airing]] = {}
    airings_of: dict[str, list[Airing]] = {}
    commands: list[tuple[str, dict]] = []
    updates: dict[str, tuple[int, str]] = {}
    base_version = int(now.timestamp() * 1000)
    for cluster_id in cluster_ids:
        mine = slots_of.get(cluster_id, [])
        digest = _slots_digest(mine)
        previous = last.get(cluster_id)
        if previous is not None and previous.digest == digest and previous.window_end - now > window / 2:
            continue
        entries = []
        airings: list[Airing] = []
        for slot in mine:
            if slot.id not in entries_of_slot:
                objects = slot_entries(slot, now - LOOKBACK, end)
                entries_of_slot[slot.id] = [entry_to_message(e) for e in objects]
                airings_of_slot[slot.id] = slot_airings(slot, objects)
            entries.extend(entries_of_slot[slot.id])
            airings.extend(airings_of_slot[slot.id])
        entries.sort(key=lambda e: (e["start_at"], e["id"]))
        command = schedule_command(
            version := max(base_version, (previous.version + 1) if previous else 1), entries, end, now
        )
        try:
            validate(Channel.COMMAND, command)
        except InvalidMessage as exc:  # one bad window must not stop the others
            log.error("schedule window for %s not sent: %s", cluster_id, exc)
            continue
        commands.append((cluster_id, command))
        updates[cluster_id] = (version, digest)
        airings_of[cluster_id] = airings
    if not commands:
        return 0
    acknowledged = publisher.publish_commands(commands)
    sent = {cluster_id for cluster_id, command in commands if command["id"] in acknowledged}
    with session_scope(engine) as session:
        # Every window built counts, acknowledged or not: a cluster offline at its airing was still meant
        # to play it (as a broadcast's delivery to an offline cluster stays targeted).
        record_windows(session, airings_of, now - LOOKBACK, now)
        for cluster_id in sent:
            version, digest = updates[cluster_id]
            session.merge(
                ClusterSchedule(cluster_id=cluster_id, version=version, digest=digest, window_end=end, pushed_at=now)
            )
    if len(sent) < len(commands):
        log.warning(
            "schedule push: %d of %d windows not acknowledged; retried next time",
            len(commands) - len(sent),
            len(commands),
        )
    return len(sent)


def _slots_digest(slots: list[ResolvedSlot]) -> str:
    """A fingerprint of what a cluster's schedule is made of."""
    described = sorted(
        (
            s.id,
            s.start_date.isoformat(),
            s.start_time.isoformat(),
            s.rule,
            s.until.isoformat() if s.until else None,
            s.layer,
            s.on_interrupt,
            [_item_digest(i) for i in s.items],
        )
        for s in slots
    )
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def _item_digest(item: Item) -> list:
    """What of an item reaches the cluster: its file, or a relay's address and length (a change of either is sent)."""
    if item.stream is not None:
        return [item.title, item.priority, "stream", item.stream.url, item.stream.duration_s]
    assert item.audio is not None
    return [item.title, item.priority, item.audio.sha256, item.audio.url]  # as before relays: digests unchanged


class SchedulePusher:
    """A thread that pushes windows when poked (a schedule changed) and every `interval` of clock time."""

    def __init__(
        self,
        engine: Engine,
        publisher: CommandPublisher,
        public_url: str,
        now: Callable[[], datetime],
        *,
        interval: timedelta = timedelta(hours=1),
        window: timedelta = WINDOW,
        poll_s: float = 1.0,
        is_leader: Callable[[], bool] = lambda: True,
        watch_revision: bool = True,
        revision_check_s: float = REVISION_CHECK_S,
    ) -> None:
        """With replicas, only the leader pushes (`is_leader`). `watch_revision` makes it notice, within
        `revision_check_s`, schedule changes that no poke announced: saved by `bcast schedule apply` or
        `cancel` in another process, or through another replica."""
        self.engine, self.publisher, self.public_url, self.now = engine, publisher, public_url, now
        self.interval = interval
        self.window = window
        self.poll_s = poll_s
        self.is_leader = is_leader
        self.watch_revision = watch_revision
        self.revision_check_s = revision_check_s
        self.pushes = 0
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-schedule-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._poke.set()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(10)

    def _run(self) -> None:
        next_at: datetime | None = None
        seen: tuple | None = None
        check_at = 0.0  # monotonic time of the next revision check
        while not self._stop.is_set():
            if not self.is_leader():
                next_at = None  # push at once if this replica takes the lead
                self._poke.wait(self.poll_s)
                continue
            now = self.now()
            if self.watch_revision and time.monotonic() >= check_at:
                check_at = time.monotonic() + self.revision_check_s
                revision = _safe_revision(self.engine)
                if revision is not None and revision != seen:
                    seen, next_at = revision, None
            if self._poke.is_set() or next_at is None or now >= next_at:
                self._poke.clear()
                if self.watch_revision:  # what this push sends is seen: no second push for the same change
                    seen = _safe_revision(self.engine) or seen
                try:
                    self.pushes += push_schedules(self.engine, self.publisher, self.public_url, now, window=self.window)
                except Exception:  # keep pushing later; a broken push must not stop the server
                    log.exception("schedule push failed")
                next_at = now + self.interval
            self._poke.wait(self.poll_s)


def schedule_revision(engine: Engine) -> tuple:
    """Changes whenever a slot or programme is saved or cancelled, through any replica (one cheap query)."""
    with session_scope(engine) as session:
        slots = session.exec(select(func.count(), func.max(Slot.updated_at), func.max(Slot.cancelled_at))).one()
        programmes = session.exec(select(func.count(), func.max(Programme.updated_at))).one()
        groups = sorted((g.name, json.dumps(g.target, sort_keys=True)) for g in session.exec(select(TargetGroup)))
    return (*slots, *programmes, hashlib.sha256(json.dumps(groups).encode()).hexdigest())


def _safe_revision(engine: Engine) -> tuple | None:
    try:
        return schedule_revision(engine)
    except Exception:  # the database is away: try again next poll
        log.warning("cannot read the schedule revision", exc_info=True)
        return None
