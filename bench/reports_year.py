"""A year of broadcasts for 10,000 clusters: the report query on rollups vs on the raw tables.

Run: .venv/bin/python bench/reports_year.py [--clusters 10000] [--days 365] [--backends sqlite,postgres]

Builds a fleet (districts of 20 communes of 20 clusters), one district-wide broadcast per district per
day (so each cluster gets one delivery a day: 3.65 M deliveries and about as many reports for the
defaults), bulk-inserted (SQLite executemany, PostgreSQL COPY). Then it builds the rollups with the
real rollup job (`refresh_rollups`), checks that the rollup figures equal the raw ones, and times, in the
same run, `commune_figures(..., refresh=False)` (rollups) against `commune_figures_raw` (the baseline)
for the last quarter, median of `--repeat` runs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CATEGORIES = ["Chuyển đổi số", "An ninh trật tự", "Nông nghiệp", None]


def fleet(clusters: int) -> tuple[list[dict], list[dict], dict[int, list[str]]]:
    units, rows = [{"id": 1, "parent_id": None, "name": "Tỉnh Thử", "level": "province"}], []
    by_district: dict[int, list[str]] = {}
    next_id = 2
    per_commune, communes_per_district = 20, 20
    n_districts = max(1, clusters // (per_commune * communes_per_district))
    made = 0
    for d in range(n_districts):
        district = next_id
        units.append({"id": district, "parent_id": 1, "name": f"Huyện {d + 1}", "level": "district"})
        next_id += 1
        for c in range(communes_per_district):
            commune = next_id
            units.append({"id": commune, "parent_id": district, "name": f"Xã {d + 1}-{c + 1}", "level": "commune"})
            next_id += 1
            for v in range(per_commune):
                if made >= clusters:
                    break
                village = next_id
                units.append({"id": village, "parent_id": commune, "name": f"Thôn {v + 1}", "level": "village"})
                next_id += 1
                cluster_id = f"c{d:03d}-{c:02d}-{v:02d}"
                rows.append({"id": cluster_id, "unit_id": village, "lat": 11.0, "lon": 106.0})
                by_district.setdefault(district, []).append(cluster_id)
                made += 1
    return units, rows, by_district


def generate(engine, clusters: int, days: int, seed: int = 7) -> dict:
    """Insert the fleet and `days` days of broadcasts, deliveries and reports; return counts."""
    from sqlalchemy import insert

    from broadcast_server.models import AdminUnit, AudioAsset, Bulletin, Cluster

    rng = random.Random(seed)
    now = datetime(2026, 12, 31, 17, tzinfo=UTC)  # 1 Jan 2027 00:00 local: a year ending with Q4 2026
    start = now - timedelta(days=days)
    units, cluster_rows, by_district = fleet(clusters)
    created = {"created_at": start, "updated_at": start}
    with engine.begin() as connection:
        connection.execute(insert(AdminUnit), [{**u, "created_at": start} for u in units])
        connection.execute(insert(Cluster), [{**c, **created} for c in cluster_rows])
        connection.execute(
            insert(AudioAsset),
            [
                {
                    "id": "ab" * 32,
                    "size_bytes": 1,
                    "duration_s": 90,
                    "format": "mp3",
                    "storage_key": "x",
                    "created_at": start,
                }
            ],
        )
        bulletins = []
        for i, category in enumerate(CATEGORIES * 3):
            bulletins.append(
                {
                    "id": uuid.uuid4().hex,
                    "title": f"Tin {i}",
                    "text": "x",
                    "kind": "text",
                    "category": category,
                    "priority": "emergency" if i == 5 else "normal",
                    "status": "approved",
                    "audio_asset_id": "ab" * 32,
                    "created_at": start,
                }
            )
        connection.execute(insert(Bulletin), bulletins)
    broadcasts, deliveries, reports = [], [], []
    delivery_id = 0
    for day in range(days):
        for members in by_district.values():
            bulletin = rng.choice(bulletins)
            at = start + timedelta(days=day, hours=rng.randint(0, 12), minutes=rng.randint(0, 59))
            broadcast_id = uuid.uuid4().hex
            broadcasts.append(
                (
                    broadcast_id,
                    bulletin["id"],
                    "ab" * 32,
                    bulletin["priority"],
                    "{}",
                    at,
                    at + timedelta(minutes=10),
                    "dispatched",
                )
            )
            duration = round(rng.uniform(60, 600), 3)
            for cluster_id in members:
                delivery_id += 1
                roll = rng.random()
                state = "played" if roll < 0.95 else "failed" if roll < 0.98 else "missed"
                command_id = secrets.token_hex(16)
                deliveries.append((delivery_id, broadcast_id, cluster_id, command_id, state, at, at))
                if state == "played":
                    reports.append(
                        (
                            secrets.token_hex(16),
                            cluster_id,
                            command_id,
                            broadcast_id,
                            state,
                            at,
                            at,
                            at,
                            at,
                            duration,
                            round(rng.uniform(0, 90), 3),
                            None,
                        )
                    )
                else:
                    reports.append(
                        (
                            secrets.token_hex(16),
                            cluster_id,
                            command_id,
                            broadcast_id,
                            state,
                            at,
                            at,
                            None,
                            None,
                            None,
                            None,
                            "download failed: timeout" if state == "failed" else "expired",
                        )
                    )
    _bulk(
        engine,
        "broadcast",
        ("id", "bulletin_id", "audio_asset_id", "priority", "target", "created_at", "expires_at", "status"),
        broadcasts,
    )
    _bulk(
        engine,
        "delivery",
        ("id", "broadcast_id", "cluster_id", "command_id", "state", "sent_at", "updated_at"),
        deliveries,
    )
    _bulk(
        engine,
        "playback_report",
        (
            "id",
            "cluster_id",
            "command_id",
            "broadcast_id",
            "status",
            "reported_at",
            "received_at",
            "started_at",
            "ended_at",
            "played_s",
            "late_s",
            "reason",
        ),
        reports,
    )
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return {
        "clusters": len(cluster_rows),
        "broadcasts": len(broadcasts),
        "deliveries": len(deliveries),
        "reports": len(reports),
    }


def _bulk(engine, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            naive = [tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row) for row in rows]
            raw.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", naive
            )
        else:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(backend: str, clusters: int, days: int, repeat: int) -> dict:
    from bench.scratch_database import scratch_database
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.statistics.queries import commune_figures, commune_figures_raw
    from broadcast_server.statistics.rollups import refresh_rollups

    with (
        tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp,
        scratch_database(backend, Path(tmp), "bench_reports") as url,
    ):
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        counts = generate(engine, clusters, days)
        generate_s = time.perf_counter() - started
        started = time.perf_counter()
        with session_scope(engine) as session:
            refresh_rollups(session, now=datetime(2027, 1, 1, tzinfo=UTC))
        rollup_s = time.perf_counter() - started
        q_start, q_end = date(2026, 10, 1), date(2027, 1, 1)
        with session_scope(engine) as session:
            rollup_q, fast = timed(lambda: commune_figures(session, q_start, q_end, refresh=False), repeat)
            raw_q, slow = timed(lambda: commune_figures_raw(session, q_start, q_end), repeat)
            year_start = q_end - timedelta(days=days)
            rollup_y, _ = timed(lambda: commune_figures(session, year_start, q_end, refresh=False), repeat)
            noop_refresh, _ = timed(lambda: refresh_rollups(session, now=datetime(2027, 1, 1, tzinfo=UTC)), repeat)
        assert [r.as_dict() for r in fast] == [r.as_dict() for r in slow], "rollups disagree with the raw figures"
        engine.dispose()
    return {
        "backend": backend,
        **counts,
        "communes": len(fast),
        "generate_s": round(generate_s, 1),
        "rollup_build_s": round(rollup_s, 1),
        "quarter_rollup_s": round(rollup_q, 4),
        "quarter_raw_s": round(raw_q, 3),
        "quarter_speedup": round(raw_q / rollup_q, 1),
        "year_rollup_s": round(rollup_y, 4),
        "refresh_noop_s": round(noop_refresh, 4),
        "figures_equal": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = [run(b, args.clusters, args.days, args.repeat) for b in args.backends.split(",")]
    print(json.dumps({"clusters": args.clusters, "days": args.days, "runs": results}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
