"""Where ingest spends its time, without a broker: the bus's decode and check, then `store_batch`, per message.

The burst of `bench.ingest` (80 % heartbeats, 20 % reports of 2,000 clusters), fed to `MqttBus._on_message` as
paho would hand it over, then stored in batches of 5,000 as the ingest worker does, on a fresh SQLite database
(or PostgreSQL). Baselines in the same run: `json.loads` of the same payloads (the least any decoding costs),
and the DB-API's `executemany` of the same heartbeat rows already converted (the least any storing costs).

    python -m bench.ingest_stages [--messages 50000] [--database sqlite|postgres] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BATCH = 5_000


class _Message:
    """What the bus reads of a paho message."""

    __slots__ = ("topic", "payload", "qos", "mid")

    def __init__(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        self.topic, self.payload, self.qos, self.mid = topic, payload, qos, mid


def run(messages: int, database: str) -> dict[str, Any]:
    from bench.ingest import TOPIC_ROOT, message
    from bench.scratch_database import scratch_database
    from bench.synthetic_fleet import cluster_ids, fleet_rows
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.messaging.mqtt_bus import MqttBus
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.services.ingest import IngestStats, store_batch
    from mqtt_contract.times import isoformat

    ids = cluster_ids(2_000, "ing")
    now = isoformat(datetime.now(UTC))
    stream = [_Message(*message(i, ids, now), mid=i + 1) for i in range(messages)]

    started = time.perf_counter()
    for item in stream:
        json.loads(item.payload)
    json_s = time.perf_counter() - started

    bus = MqttBus("127.0.0.1", 1, topic_root=TOPIC_ROOT, max_buffered=messages + 1)
    bus.acknowledge = lambda mids: None  # type: ignore[method-assign]  # no broker to tell
    started = time.perf_counter()
    for item in stream:
        bus._on_message(None, None, item)  # type: ignore[arg-type]
    decode_s = time.perf_counter() - started
    decoded = [bus.events.get_nowait() for _ in range(bus.events.qsize())]

    with tempfile.TemporaryDirectory(prefix="bench-stages-") as folder:
        with scratch_database(database, Path(folder), "bench_stages") as url:
            upgrade(url)
            engine = make_engine(url)
            import_fleet(engine, fleet_rows(ids))
            stats = IngestStats()
            started = time.perf_counter()
            for start in range(0, len(decoded), BATCH):
                with session_scope(engine) as session:
                    store_batch(session, decoded[start : start + BATCH], stats)
            store_s = time.perf_counter() - started
            heartbeats = [i for i in decoded if i.channel.value == "heartbeat"]
            rows = [
                (i.cluster_id, now, now, i.message["seq"], i.message["uptime_s"], i.message.get("firmware"))
                for i in heartbeats
            ]
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                mark = "?" if database == "sqlite" else "%s"
                insert = (
                    "INSERT INTO heartbeat (cluster_id, sent_at, received_at, seq, uptime_s, firmware) "
                    f"VALUES ({', '.join([mark] * 6)})"
                )
                started = time.perf_counter()
                for start in range(0, len(rows), BATCH):
                    cursor.executemany(insert, rows[start : start + BATCH])
                    raw.commit()
                raw_s = time.perf_counter() - started
            finally:
                raw.close()
            engine.dispose()
    per = 1e6 / messages
    return {
        "messages": messages,
        "database": database,
        "rejected": bus.rejected,
        "stored_heartbeats": stats.heartbeats,
        "stored_reports": stats.stored_reports,
        "decode_us_per_msg": round(decode_s * per, 1),
        "json_loads_us_per_msg": round(json_s * per, 1),
        "decode_ratio": round(decode_s / json_s, 2),
        "store_us_per_msg": round(store_s * per, 1),
        "raw_heartbeat_insert_us_per_row": round(raw_s * 1e6 / max(1, len(rows)), 1),
        "store_ratio": round((store_s / messages) / (raw_s / max(1, len(rows))), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = run(args.messages, args.database)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['messages']:,} messages: decode {result['decode_us_per_msg']} µs each "
        f"(json.loads alone {result['json_loads_us_per_msg']}), store {result['store_us_per_msg']} µs each "
        f"(a bare executemany of heartbeat rows {result['raw_heartbeat_insert_us_per_row']} µs a row)"
    )


if __name__ == "__main__":
    main()
