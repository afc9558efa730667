"""Airings of the stored schedule in a window, one row per airing (not per cluster), for pages to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from broadcast_server.scheduling.catalog import cluster_entries


@dataclass(frozen=True)
class Airing:
    entry_id: str
    slot_id: str
    title: str
    start_at: datetime
    duration_s: float
    layer: str
    clusters: int
    relay_s: int = 0  # how much of it relays a live stream (tiếp sóng): shown as "Tiếp sóng · N phút"


def airings(
    session: Session, public_url: str, start: datetime, end: datetime, cluster_ids: set[str] | None
) -> list[Airing]:
    """Every airing between start and end reaching at least one of `cluster_ids` (None: any), by time."""
    found: dict[str, Airing] = {}
    for cluster_id, entries in cluster_entries(session, public_url, start, end).items():
        if cluster_ids is not None and cluster_id not in cluster_ids:
            continue
        for entry in entries:
            known = found.get(entry.id)
            if known is None:
                relay_s = round(sum(i.stream.duration_s for i in entry.items if i.stream is not None))
                found[entry.id] = Airing(
                    entry.id,
                    entry.id.split("@")[0],
                    entry.title,
                    entry.start_at,
                    entry.duration_s,
                    entry.layer,
                    1,
                    relay_s,
                )
            else:
                found[entry.id] = Airing(**{**vars(known), "clusters": known.clusters + 1})
    return sorted(found.values(), key=lambda a: (a.start_at, a.title))
