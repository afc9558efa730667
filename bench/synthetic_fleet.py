"""A made-up province of any size, for benchmarks: districts of 20 communes of 20 clusters (one per village)."""

from __future__ import annotations

PER_COMMUNE = 20
COMMUNES_PER_DISTRICT = 20


def cluster_ids(n: int, prefix: str) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


def fleet_rows(ids: list[str]) -> list:
    """FleetRow objects for `ids`, in one province, as `bcast fleet import` would read them."""
    from broadcast_server.domain.fleet import FleetRow

    rows = []
    for i, cluster_id in enumerate(ids):
        commune = i // PER_COMMUNE
        district = commune // COMMUNES_PER_DISTRICT
        rows.append(
            FleetRow(
                cluster_id=cluster_id,
                province="Tỉnh Đo Thử",
                district=f"Huyện {district + 1}",
                commune=f"Xã {district + 1}-{commune % COMMUNES_PER_DISTRICT + 1}",
                village=f"Thôn {i % PER_COMMUNE + 1}",
                lat=11.5,
                lon=106.6,
            )
        )
    return rows
