"""A simulated month of district bulletins with faults, and the statistics checked against ground truth.

Twice a day (06:00 and 17:30 local) the district sends a bulletin to every cluster through the API. A
share of clusters is cut off for the whole month. At the end the server's statistics (the same function
the quarterly report uses) are compared, commune by commune, with what the simulated speakers did.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx

from bcast.broker import LocalBroker
from bcast.demo import api_ok
from bcast.sim_stage import drain, prepare, start

SLOW_SPEED = 100.0  # while a bulletin airs
FAST_SPEED = 50_000.0  # in between
STRAGGLER_SPEED = 1_000.0  # from 4 minutes after an airing until its command expires (3.4 s of real time)
TTL_S = 3600  # each bulletin's command lives an hour
AIR_TIMES = (time(6, 0), time(17, 30))  # local
MARGIN = timedelta(minutes=1)
FIRST_DAY = date(2026, 10, 1)  # a month inside 2026Q4, local days


def run_month_demo(fleet: Path, *, days: int = 30, offline_fraction: float = 0.0, seed: int = 0) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bcast-month-")))
        broker = stack.enter_context(LocalBroker())
        return asyncio.run(_run(fleet, workdir, broker, stack, days, offline_fraction, seed))


async def _run(
    fleet: Path,
    workdir: Path,
    broker: LocalBroker,
    stack: contextlib.ExitStack,
    days: int,
    offline_fraction: float,
    seed: int,
) -> dict[str, Any]:
    from broadcast_server.db.session import session_scope
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.services.bulletins import approve_bulletin, create_text_bulletin
    from broadcast_server.statistics.queries import commune_figures
    from firmware_sim.warp_clock import WarpClock

    stage = prepare(fleet, workdir, broker, stack, offline_fraction=offline_fraction, seed=seed)
    settings, engine, communes, offline = stage.settings, stage.engine, stage.communes, stage.offline
    bulletin_ids = []
    with session_scope(engine) as session:
        for title, text, category in (
            ("Bản tin sáng", "Đài truyền thanh xã xin kính chào bà con. Sau đây là bản tin buổi sáng.", None),
            (
                "Chuyển đổi số",
                "Chuyên mục chuyển đổi số: bà con cài đặt ứng dụng dịch vụ công trực tuyến.",
                "Chuyển đổi số",
            ),
        ):
            bulletin = create_text_bulletin(session, settings.audio_dir, title=title, text=text, category=category)
            approve_bulletin(session, bulletin.id)
            bulletin_ids.append(bulletin.id)

    midnight = datetime.combine(FIRST_DAY, time(0), LOCAL_TZ)
    airings = [datetime.combine(FIRST_DAY + timedelta(days=d), t, LOCAL_TZ) for d in range(days) for t in AIR_TIMES]
    clock = WarpClock(
        midnight - timedelta(hours=1),
        [(a - MARGIN, a + 4 * MARGIN) for a in airings],
        slow=SLOW_SPEED,
        fast=FAST_SPEED,
        # Until the command expires, a loaded machine's stragglers still get real seconds to play it.
        other_intervals=[(a + 4 * MARGIN, a + timedelta(seconds=TTL_S), STRAGGLER_SPEED) for a in airings],
    )
    await start(stage, workdir, broker, stack, clock, seed=seed)
    sim = stage.sim
    clock.restart()

    sent: set[str] = set()
    async with httpx.AsyncClient(base_url=settings.public_url, timeout=60, headers=stage.api_headers) as api:
        districts = api_ok(await api.get("/api/v1/units", params={"level": "district"}))
        for i, moment in enumerate(airings):
            delay = (moment - clock.now()).total_seconds()
            if delay > 0:
                await clock.sleep(delay)
            broadcast = api_ok(
                await api.post(
                    "/api/v1/broadcasts",
                    json={
                        "bulletin_id": bulletin_ids[i % 2],
                        "target": {"unit_ids": [d["id"] for d in districts]},
                        "ttl_s": TTL_S,
                    },
                )
            )
            sent.add(broadcast["id"])
        end = midnight + timedelta(days=days)
        delay = (end - clock.now()).total_seconds()
        if delay > 0:
            await clock.sleep(delay)
    await drain(stage)
    truth_plays = [r for r in sim.ground_truth() if r.completed and r.broadcast_id in sent]
    await sim.stop()

    # Ground truth by the definitions of broadcast_server.statistics.figures.
    played_by: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (commune, broadcast) -> cluster -> ms
    for record in truth_plays:
        played_by[(communes[record.cluster_id], record.broadcast_id)][record.cluster_id] = round(record.played_s * 1000)
    truth: dict[str, dict[str, Any]] = {}
    for name in sorted(set(communes.values())):
        keys = [k for k in played_by if k[0] == name]
        truth[name] = {
            "bulletins_played": len(keys),
            "broadcast_seconds": sum(max(played_by[k].values()) for k in keys) / 1000,
            "clusters_played": sum(len(played_by[k]) for k in keys),
        }
    with session_scope(engine) as session:
        figures = commune_figures(session, FIRST_DAY, FIRST_DAY + timedelta(days=days))
    report = {f.name: f.demo_dict() for f in figures}
    return {
        "clusters": len(stage.rows),
        "days": days,
        "offline": len(offline),
        "broadcasts": len(sent),
        "communes": [
            {
                "name": n,
                "clusters": sum(1 for c in communes.values() if c == n),
                "offline": sum(1 for c in offline if communes[c] == n),
            }
            for n in sorted(truth)
        ],
        "ground_truth": truth,
        "report": report,
        "report_equals_ground_truth": report == truth,
    }
