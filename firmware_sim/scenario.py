"""Which clusters a run simulates and which of them are cut off, deterministically from a seed."""

from __future__ import annotations

import random
from pathlib import Path


def load_fleet_ids(path: Path) -> list[str]:
    """Cluster ids of a fleet CSV in the shared format, validated by the same parser the server uses."""
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet_csv

    return [row.cluster_id for row in parse_fleet_csv(decode_fleet_bytes(Path(path).read_bytes()))]


def pick_offline(cluster_ids: list[str], fraction: float, seed: int) -> set[str]:
    """A reproducible random subset of round(fraction × N) clusters."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("offline fraction must be within 0..1")
    count = round(fraction * len(cluster_ids))
    return set(random.Random(seed).sample(sorted(cluster_ids), count))
