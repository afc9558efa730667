"""Pushing schedule windows to a province: what recording the scheduled airings adds to a push.

Run: .venv/bin/python -m bench.schedule_push [--clusters 10000] [--database sqlite|postgres]

A fleet of `--clusters` clusters spread over Bình Sơn's 22 communes, the example week applied (speech
rendered for real), then `push_schedules` to every cluster through a publisher that acknowledges at once
(no broker: the database work is what is measured). In the same run, three pushes from the same state
(no window sent yet): with the airings recorded for the first time (`scheduled_airing_target` rows
inserted), the baseline with recording switched off, and with the airings recorded again (rows already
there, as when windows are re-sent a day later). Prints one JSON object: seconds of each push, of the
recording within it, the rows written, and each push as a ratio of the baseline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLIC_URL = "http://bcast.bench:8000"
PUSH_AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 07:00 in Vietnam, the example week's first day


class Acknowledging:
    """The publisher port of `push_schedules`, acknowledging every command at once."""

    def __init__(self) -> None:
        self.sent = 0

    def publish_commands(self, commands, *, timeout_s: float = 60.0) -> set[str]:
        commands = list(commands)
        self.sent += len(commands)
        return {command["id"] for _, command in commands}


def fleet_csv(clusters: int) -> str:
    """`clusters` rows over the communes of the Bình Sơn sample file, villages numbered per commune."""
    sample = list(csv.DictReader((ROOT / "bcast" / "data" / "binh-son.csv").open(encoding="utf-8")))
    communes = sorted({row["commune"] for row in sample})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["cluster_id", "province", "district", "commune", "village", "lat", "lon"])
    for i in range(clusters):
        commune = communes[i % len(communes)]
        writer.writerow(
            [f"bs-{i:05d}", "Quảng Ngãi", "Bình Sơn", commune, f"Thôn {i // len(communes) + 1}", 15.3, 108.8]
        )
    return out.getvalue()


def run(clusters: int, database: str) -> dict:
    from sqlalchemy import delete, func
    from sqlmodel import select

    import broadcast_server.scheduling.push as push_module
    from bench.scratch_database import scratch_database
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.domain.fleet import parse_fleet
    from broadcast_server.models import ClusterSchedule, ScheduledAiring, ScheduledAiringTarget
    from broadcast_server.scheduling.apply import apply_schedule
    from broadcast_server.scheduling.schedule_file import parse_schedule_yaml
    from broadcast_server.services.fleet_import import import_fleet

    with tempfile.TemporaryDirectory(prefix="bcast-push-bench-") as work, scratch_database(database, Path(work)) as url:
        upgrade(url)
        engine = make_engine(url)
        import_fleet(engine, parse_fleet(fleet_csv(clusters)).rows)
        week = ROOT / "schedules" / "example-week.yaml"
        with session_scope(engine) as session:
            apply_schedule(
                session,
                parse_schedule_yaml(week.read_text(encoding="utf-8")),
                audio_dir=Path(work) / "audio",
                base_dir=week.parent,
                public_url=PUBLIC_URL,
                now=PUSH_AT,
                accept_conflicts=True,
            )
        real_record = push_module.record_windows
        recording_s = [0.0]

        def timed_record(*args, **kwargs):
            began = time.perf_counter()
            try:
                return real_record(*args, **kwargs)
            finally:
                recording_s[0] += time.perf_counter() - began

        def push(record: bool) -> dict:
            with session_scope(engine) as session:
                session.exec(delete(ClusterSchedule))  # every window sent again
            push_module.record_windows = timed_record if record else (lambda *args, **kwargs: None)
            recording_s[0] = 0.0
            publisher = Acknowledging()
            began = time.perf_counter()
            try:
                sent = push_module.push_schedules(engine, publisher, PUBLIC_URL, PUSH_AT)
            finally:
                push_module.record_windows = real_record
            return {
                "seconds": round(time.perf_counter() - began, 3),
                "recording_s": round(recording_s[0], 3),
                "windows": sent,
            }

        first = push(record=True)
        with session_scope(engine) as session:
            rows = session.exec(select(func.count()).select_from(ScheduledAiringTarget)).one()
            airings = session.exec(select(func.count()).select_from(ScheduledAiring)).one()
        baseline = push(record=False)
        again = push(record=True)
        engine.dispose()
    return {
        "clusters": clusters,
        "database": database,
        "airings_in_window": airings,
        "target_rows": rows,
        "push_recording_first": first,
        "push_baseline_no_recording": baseline,
        "push_recording_again": again,
        "first_ratio": round(first["seconds"] / baseline["seconds"], 2),
        "again_ratio": round(again["seconds"] / baseline["seconds"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(json.dumps(run(args.clusters, args.database), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
