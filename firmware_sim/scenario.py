"""Which clusters a run simulates and which of them are cut off, deterministically from a seed."""

from __future__ import annotations

import random
from pathlib import Path


def load_fleet_ids(path: Path) -> list[str]:
    """Cluster ids of a fleet CSV in the shared format, parsed as the demo does (repeated ids renamed)."""
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet

    fleet = parse_fleet(decode_fleet_bytes(Path(path).read_bytes()), rename_duplicates=True)
    return [row.cluster_id for row in fleet.rows]


def pick_offline(cluster_ids: list[str], fraction: float, seed: int) -> set[str]:
    """A reproducible random subset of round(fraction × N) clusters."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("offline fraction must be within 0..1")
    count = round(fraction * len(cluster_ids))
    return set(random.Random(seed).sample(sorted(cluster_ids), count))
