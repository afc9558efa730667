"""A simulated week (or month) of schedule on a fleet, at accelerated time, checked against the preview.

The server and every agent share one AcceleratedClock. The server applies the schedule file and pushes
48-hour windows; agents play from their stored windows; the playback log the server stores is then
compared with the preview computed by the same planner. An emergency at a random moment of a programme
measures how fast every online cluster cuts in, and an optional commune cut shows playing from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bcast.broker import LocalBroker
from bcast.demo import DemoError, api_ok
from bcast.sim_stage import drain, prepare, start

SLOW_SPEED = 20.0  # while programmes air: 20 virtual seconds per real second
FAST_SPEED = 50_000.0  # between programmes
AIRING_MARGIN = timedelta(minutes=3)  # run slowly from a little before an airing to a little after
EMERGENCY_SPAN = (timedelta(seconds=2), timedelta(seconds=20))  # real time before and after the alert is sent
ALERT_REPEATS = 2
CUT_MATCH_S = 1.0  # a 'stopped' report's start and the speaker's own, in virtual seconds
ON_AIR_WAIT_STEPS = 200  # at most 10 s of real time waiting for every cluster to be on air before the alert
MAX_LATE_WALL_S = 0.25  # lateness below a quarter of a real second is event-loop jitter, not lateness


@dataclass(frozen=True)
class Cut:
    commune: str
    from_hour: float  # virtual hours after the first midnight
    hours: float


def _emergency_moment(preview: dict[str, list[Any]], midnight: datetime, days: int, rng: random.Random) -> datetime:
    """A random moment early in an item that most clusters play, in the middle of the period if possible.

    Early in the item, so that something is still playing when the alert arrives and the interrupted
    item's on_interrupt rule is exercised on every cluster that plays it."""
    audience = Counter((p.start, p.end) for plays in preview.values() for p in plays)
    if not audience:
        return midnight + timedelta(days=days / 2)
    widest = max(audience.values())
    items = sorted(k for k, n in audience.items() if n == widest)
    middle = [k for k in items if midnight + timedelta(days=days * 0.3) < k[0] < midnight + timedelta(days=days * 0.7)]
    start, end = rng.choice(middle or items)
    return start + timedelta(seconds=rng.uniform(0.1, 0.4) * (end - start).total_seconds())


def _latest_alert(preview: dict[str, list[Any]], moment: datetime) -> datetime:
    """How long the alert may wait for late clusters: until 60 % of the item it was aimed at has aired
    (later, the clusters on time would finish the item before the alert reaches them)."""
    spans = [(p.start, p.end) for plays in preview.values() for p in plays if p.start <= moment < p.end]
    if not spans:
        return moment
    start, end = max(spans, key=lambda span: sum(1 for s in spans if s == span))
    return start + 0.6 * (end - start)


def _handled_as_configured(stop: Any, played: list[Any], truth: list[Any], durations: dict[str, float]) -> bool:
    """Did the item cut by the emergency then do what its programme's on_interrupt says?

    restart: played again from the start; resume: played again from where it was cut; drop: no 'played'
    report for it. Resume and restart are judged on the simulator's ground truth: the cut play (the one the
    'stopped' report names by its start) and the next play of the same file in that programme on that
    speaker, with where in the file each began. The
    length aired cannot tell resume from restart when the alert came a second into the item (a loaded
    machine starts items late), and a resumed item the alert's repeat cuts again is resumed twice."""
    policy = (stop.reason or "").split("on_interrupt=")[-1]
    after = [r for r in played if r.cluster_id == stop.cluster_id and r.command_id == stop.command_id and r.started_at]
    entry_id = stop.command_id.split("#")[0]
    plays = sorted(
        (t for t in truth if t.cluster_id == stop.cluster_id and t.broadcast_id == entry_id), key=lambda t: t.started_at
    )
    if not stop.started_at or not plays:
        return False
    # The agent stamps the start just before its player opens the file (the simulated one hashes it
    # first: milliseconds on a loaded machine), so the cut play is the nearest one that did not finish.
    cut_at = stop.started_at  # aware UTC, as the UTCDateTime column gives it back
    index, nearest = min(enumerate(plays), key=lambda p: abs((p[1].started_at - cut_at).total_seconds()))
    if nearest.completed or abs((nearest.started_at - cut_at).total_seconds()) > CUT_MATCH_S:
        return False  # the report names no play the speaker really did
    if policy == "drop":
        return not after
    # The next play of the same file in that programme (its other items carry the same label).
    following = [t for t in plays[index + 1 :] if t.file == nearest.file][:1]
    if len(after) != 1 or not following:
        return False
    began = following[0].start_s
    if policy == "resume":
        # played_s is reported to the millisecond
        # An alert that lands as the item ends finds it played out: the player clamps the offset to its length.
        expected = min(nearest.start_s + (stop.played_s or 0.0), durations.get(stop.command_id, math.inf))
        return began > 0 and abs(began - expected) < 0.01
    return began == 0.0


def _scheduled_statistics(
    engine: Any, truth: list[Any], preview: dict[str, list[Any]], communes: dict[str, str], now: datetime
) -> dict[str, Any]:
    """Scheduled airings per commune: the server's rollups (``stats_airing_unit``, what the quarterly report
    sums) against what the simulated speakers played, by the definitions of ``statistics.figures``."""
    from sqlmodel import select

    from broadcast_server.db.session import session_scope
    from broadcast_server.models import StatsAiringUnit
    from broadcast_server.statistics.periods import local_day
    from broadcast_server.statistics.queries import commune_figures
    from broadcast_server.statistics.rollups import refresh_rollups

    # A file is known by its hash, a relayed stream by its address (what the simulated speaker logs of each).
    item_of = {(p.entry_id, _played_key(p)): f"{p.entry_id}#{p.item_index}" for ps in preview.values() for p in ps}
    played_by: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (commune, airing) -> cluster -> ms
    for record in truth:  # each speaker's log is in time order: its first play to the end counts
        airing = item_of.get((record.broadcast_id, record.sha256 or record.file))
        if record.completed and airing is not None:
            aired_ms = round((record.start_s + record.played_s) * 1000)  # a resumed item counts whole
            played_by[(communes[record.cluster_id], airing)].setdefault(record.cluster_id, aired_ms)
    names = sorted(set(communes.values()))
    ground_truth = {}
    for name in names:
        keys = [k for k in played_by if k[0] == name]
        ground_truth[name] = {
            "bulletins_played": len(keys),
            "broadcast_seconds": sum(max(played_by[k].values()) for k in keys) / 1000,
            "clusters_played": sum(len(played_by[k]) for k in keys),
        }
    report = {name: {"bulletins_played": 0, "broadcast_seconds": 0.0, "clusters_played": 0} for name in names}
    with session_scope(engine) as session:
        refresh_rollups(session, now)
        day = local_day(now)  # any day: every unit with clusters gets a row, and so its name
        name_of = {f.unit_id: f.name for f in commune_figures(session, day, day, refresh=False)}
        airtime: dict[str, int] = defaultdict(int)
        for row in session.exec(select(StatsAiringUnit).where(StatsAiringUnit.played > 0)):
            figures = report[name_of[row.unit_id]]
            figures["bulletins_played"] += 1
            figures["clusters_played"] += row.played
            airtime[name_of[row.unit_id]] += row.airtime_ms
    for name, ms in airtime.items():
        report[name]["broadcast_seconds"] = ms / 1000
    return {"ground_truth": ground_truth, "report": report, "report_equals_ground_truth": report == ground_truth}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_schedule_demo(
    fleet: Path,
    schedule: Path,
    *,
    days: int = 7,
    offline_fraction: float = 0.0,
    seed: int = 0,
    emergency: bool = True,
    cut: Cut | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run `days` of `schedule` on `fleet`; return the demo's JSON document."""
    with contextlib.ExitStack() as stack:
        workdir = Path(keep) if keep else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bcast-week-")))
        workdir.mkdir(parents=True, exist_ok=True)
        broker = stack.enter_context(LocalBroker())
        return asyncio.run(
            _run(
                fleet,
                schedule,
                workdir,
                broker,
                stack,
                days,
                offline_fraction,
                seed,
                emergency,
                cut,
            )
        )


async def _run(
    fleet: Path,
    schedule_file: Path,
    workdir: Path,
    broker: LocalBroker,
    stack: contextlib.ExitStack,
    days: int,
    offline_fraction: float,
    seed: int,
    emergency: bool,
    cut: Cut | None,
) -> dict[str, Any]:
    from sqlmodel import select

    from broadcast_server.db.session import session_scope
    from broadcast_server.models import PlaybackReport
    from broadcast_server.scheduling.apply import apply_schedule
    from broadcast_server.scheduling.catalog import cluster_entries
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.scheduling.schedule_file import parse_schedule_yaml
    from broadcast_server.services.bulletins import approve_bulletin, create_text_bulletin
    from firmware_sim.warp_clock import WarpClock
    from speaker_agent.playout import plan

    rng = random.Random(seed)
    stage = prepare(
        fleet,
        workdir,
        broker,
        stack,
        offline_fraction=offline_fraction,
        seed=seed,
        schedule_push_interval_s=6 * 3600,
        # The whole period in one window: between airings a virtual day passes in under two real seconds,
        # too fast to re-send windows to every agent each day.
        schedule_window_h=(days + 2) * 24,
    )
    settings, engine, rows, communes = stage.settings, stage.engine, stage.rows, stage.communes
    spec = parse_schedule_yaml(schedule_file.read_text(encoding="utf-8"))
    first_day = min(s.start_date for s in spec.slots)
    midnight = datetime.combine(first_day, datetime.min.time(), LOCAL_TZ)
    period_end = midnight + timedelta(days=days)
    with session_scope(engine) as session:
        apply_schedule(
            session,
            spec,
            audio_dir=settings.audio_dir,
            base_dir=schedule_file.parent,
            public_url=settings.public_url,
            now=midnight,
            accept_conflicts=True,
        )
        alert = create_text_bulletin(
            session,
            settings.audio_dir,
            title="Cảnh báo khẩn cấp",
            priority="emergency",
            text="Thông báo khẩn cấp: bão số 5 đang vào bờ, bà con vùng ven biển khẩn trương sơ tán.",
        )
        approve_bulletin(session, alert.id)
        alert_id = alert.id

    online = stage.online
    with session_scope(engine) as session:
        entries = cluster_entries(session, settings.public_url, midnight, period_end)
    preview = {c: plan(entries.get(c, []), start=midnight, end=period_end + timedelta(hours=1)) for c in online}
    airings = {(p.due, p.end) for plays in preview.values() for p in plays}
    marks = []
    if cut is not None:  # the cut and the restore happen on time only if time runs slowly around them
        marks = [midnight + timedelta(hours=h) for h in (cut.from_hour, cut.from_hour + cut.hours)]
    moment = _emergency_moment(preview, midnight, days, rng) if emergency else None
    latest_alert = _latest_alert(preview, moment) if moment else None
    clock = WarpClock(
        midnight - timedelta(hours=2),
        [(a - AIRING_MARGIN, b + AIRING_MARGIN) for a, b in airings]
        + [(m - AIRING_MARGIN, m + AIRING_MARGIN) for m in marks],
        slow=SLOW_SPEED,
        fast=FAST_SPEED,
        # Real time around the emergency: what preempts what is decided in real seconds, as on air.
        other_intervals=[(moment - EMERGENCY_SPAN[0], moment + EMERGENCY_SPAN[1], 1.0)] if moment else [],
    )
    await start(stage, workdir, broker, stack, clock, seed=seed, push_poll_s=0.02)
    runtime, sim = stage.runtime, stage.sim
    # Time starts once every online agent holds its window and the window's audio: on a device the
    # window arrives a day or two ahead, here the first airing is minutes of real time away.
    agents = [c.agent for c in sim.clusters.values() if c.online]
    for _ in range(3000):
        if all(
            a.schedule.version > 0
            and all(a.cache.has(i.audio.sha256) for e in a.schedule.entries for i in e.items if i.audio is not None)
            for a in agents
        ):
            break
        await asyncio.sleep(0.02)
    else:
        raise DemoError("the first schedule windows and their audio did not reach every agent in time")
    clock.restart()

    async def sleep_until(moment: datetime) -> None:
        delay = (moment - clock.now()).total_seconds()
        if delay > 0:
            await clock.sleep(delay)

    emergency_info: dict[str, Any] = {}
    restored_at: list[datetime] = []
    cut_window: list[datetime] = []
    tasks = []
    if cut is not None:
        cut_ids = [c for c in online if communes[c] == cut.commune]
        if not cut_ids:
            raise DemoError(f"no online cluster in commune {cut.commune!r}")

        async def cut_and_restore() -> None:
            await sleep_until(midnight + timedelta(hours=cut.from_hour))
            await sim.cut(cut_ids, "network")
            cut_window.append(clock.now())  # when it really happened: the loop may wake a little late
            await sleep_until(midnight + timedelta(hours=cut.from_hour + cut.hours))
            cut_window.append(clock.now())
            restored_at.append(datetime.now(UTC))  # reports carry the server's real receive time
            await sim.restore(cut_ids)

        tasks.append(asyncio.ensure_future(cut_and_restore()))
    if moment is not None:

        async def fire() -> None:
            await sleep_until(moment)
            # Time runs at real speed here. On a loaded machine some agents start the item a little late:
            # wait (boundedly) until every reachable cluster is on air, so the alert cuts an item on each.
            reachable = [c.agent for c in sim.clusters.values() if c.online and c.down is None]
            for _ in range(ON_AIR_WAIT_STEPS):
                if all(a.playing is not None for a in reachable) or clock.now() >= latest_alert:
                    break
                await asyncio.sleep(0.05)
            on_air = sum(1 for a in reachable if a.playing is not None)
            async with httpx.AsyncClient(base_url=settings.public_url, timeout=30, headers=stage.api_headers) as api:
                districts = api_ok(await api.get("/api/v1/units", params={"level": "district"}))
                sent_virtual = clock.now()
                broadcast = api_ok(
                    await api.post(
                        "/api/v1/broadcasts",
                        json={
                            "bulletin_id": alert_id,
                            "target": {"unit_ids": [d["id"] for d in districts]},
                            "ttl_s": 86400,
                            # As a district would send a storm warning: twice, ten minutes apart, at full level.
                            "repeat_times": ALERT_REPEATS,
                            "repeat_interval_min": 10,
                            "volume": 100,
                        },
                    )
                )
            emergency_info.update(broadcast_id=broadcast["id"], sent_virtual=sent_virtual, on_air=on_air)

        tasks.append(asyncio.ensure_future(fire()))

    await sleep_until(period_end + timedelta(minutes=30))
    for task in tasks:  # anything not done by the end of the period is abandoned, not waited for
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:  # a failed emergency or cut must not pass silently as "not measured"
        if isinstance(outcome, Exception) and not isinstance(outcome, asyncio.CancelledError):
            raise DemoError(f"the demo's timeline failed: {outcome!r}") from outcome
    await drain(stage)
    truth = sim.ground_truth()
    await sim.stop()
    if runtime.ingest is not None:
        runtime.ingest.wait_idle(10)

    with session_scope(engine) as session:
        reports = session.exec(select(PlaybackReport).where(PlaybackReport.command_id.like("%#%"))).all()  # type: ignore[attr-defined]
    played = [r for r in reports if r.status == "played"]
    by_key = Counter((r.cluster_id, r.command_id) for r in played)
    dropped = {(r.cluster_id, r.command_id) for r in reports if r.status == "stopped" and "drop" in (r.reason or "")}
    tolerance = MAX_LATE_WALL_S * SLOW_SPEED
    sequence: dict[str, list[str]] = defaultdict(list)
    for r in sorted(played, key=lambda r: (r.cluster_id, r.started_at)):
        sequence[r.cluster_id].append(r.command_id)
    slots_expected = slots_played = mismatches = 0
    for cluster_id in online:
        expected = [
            f"{p.entry_id}#{p.item_index}"
            for p in preview[cluster_id]
            if (cluster_id, f"{p.entry_id}#{p.item_index}") not in dropped
        ]
        airings: dict[str, list[str]] = defaultdict(list)
        for key in expected:
            airings[key.split("#")[0]].append(key)
        slots_expected += len(airings)
        slots_played += sum(1 for keys in airings.values() if all(by_key[(cluster_id, k)] for k in keys))
        mismatches += list(dict.fromkeys(sequence[cluster_id])) != expected
    document: dict[str, Any] = {
        "clusters": len(rows),
        "online": len(online),
        "days": days,
        "speed": {"airing": SLOW_SPEED, "between": FAST_SPEED},
        "wall_seconds": round(clock.total_wall(period_end), 1),
        "slots_expected": slots_expected,
        "slots_played": slots_played,
        "duplicates": sum(n - 1 for n in by_key.values() if n > 1),
        "late": sum(1 for r in played if (r.late_s or 0) > tolerance),
        "late_tolerance_s": round(tolerance, 1),
        "preview_mismatches": mismatches,
        # Every scheduled item each commune played, as the statistics count it and as the speakers did.
        "scheduled_statistics": _scheduled_statistics(
            engine, truth, preview, communes, period_end + timedelta(hours=1)
        ),
    }
    if emergency_info:
        sent = emergency_info["sent_virtual"]
        # Clusters cut off when the alert went out get it when they are back: counted apart, not as latency.
        unreachable = set()
        if cut is not None and len(cut_window) == 2 and cut_window[0] <= sent < cut_window[1]:
            unreachable = {c for c in online if communes[c] == cut.commune}
        alert_plays = [rec for rec in truth if rec.broadcast_id == emergency_info["broadcast_id"]]
        first_play: dict[str, datetime] = {}
        for rec in alert_plays:
            first_play[rec.cluster_id] = min(rec.started_at, first_play.get(rec.cluster_id, rec.started_at))
        starts = [clock.wall_seconds_between(sent, t) for c, t in first_play.items() if c not in unreachable]
        plays_per_cluster = Counter(rec.cluster_id for rec in alert_plays if rec.completed)
        stops = [r for r in reports if r.status == "stopped" and "on_interrupt=" in (r.reason or "")]
        interrupted = Counter((r.reason or "").split("on_interrupt=")[-1] for r in stops)
        planned = [p for plays in preview.values() for p in plays]
        durations = {f"{p.entry_id}#{p.item_index}": (p.end - p.start).total_seconds() for p in planned}
        handled = sum(_handled_as_configured(stop, played, truth, durations) for stop in stops)
        document["emergency"] = {
            "at": sent.astimezone(LOCAL_TZ).isoformat(timespec="seconds"),
            "clusters_targeted": len(online),
            "clusters_started": len(first_play),
            "clusters_played_every_repeat": sum(1 for n in plays_per_cluster.values() if n == ALERT_REPEATS),
            "plays_at_forced_volume": sum(1 for rec in alert_plays if rec.volume == 100),
            "plays": len(alert_plays),
            "clusters_cut_off_at_the_time": len(unreachable),
            "clusters_on_air_when_sent": emergency_info["on_air"],  # the simulator's ground truth
            "interrupted": dict(interrupted),
            "interrupted_handled_as_configured": handled,
        }
        document["emergency_start_s"] = {
            "p50": round(statistics.median(starts), 3) if starts else None,
            "p99": round(_percentile(starts, 0.99), 3) if starts else None,
            "max": round(max(starts), 3) if starts else None,
        }
    if cut is not None:
        cut_ids = {c for c in online if communes[c] == cut.commune}
        planned = (midnight + timedelta(hours=cut.from_hour), midnight + timedelta(hours=cut.from_hour + cut.hours))
        window = (cut_window[0], cut_window[1]) if len(cut_window) == 2 else planned
        during = [
            r for r in played if r.cluster_id in cut_ids and r.started_at and window[0] <= r.started_at < window[1]
        ]
        document["cut"] = {
            "commune": cut.commune,
            "clusters": len(cut_ids),
            "hours": round((window[1] - window[0]).total_seconds() / 3600, 2),
            "items_played_while_cut": len(during),
            "expected_while_cut": sum(1 for c in cut_ids for p in preview[c] if window[0] <= p.start < window[1]),
            "reports_received_after_cut": sum(1 for r in during if restored_at and r.received_at >= restored_at[0]),
        }
    return document


def _played_key(planned: Any) -> str:
    """What a simulated speaker's record names a planned item by: a file's hash, or a relay's address."""
    return planned.audio.sha256 if planned.audio is not None else planned.stream.url
