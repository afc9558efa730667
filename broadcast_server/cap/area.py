"""Which clusters lie inside a CAP area: polygons (even-odd rule) and circles (great-circle distance)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from broadcast_server.cap.alert import Area, Circle

EARTH_RADIUS_KM = 6371.0088


def in_polygon(lat: float, lon: float, ring: tuple[tuple[float, float], ...]) -> bool:
    """Ray casting on (lat, lon) as plane coordinates: right for areas of a province, not across ±180°."""
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(ring, ring[1:], strict=False):
        if (lat1 > lat) != (lat2 > lat):
            crossing = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing:
                inside = not inside
    return inside


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def in_circle(lat: float, lon: float, circle: Circle) -> bool:
    return distance_km(lat, lon, circle.lat, circle.lon) <= circle.radius_km


def clusters_in(areas: Iterable[Area], clusters: Iterable[tuple[str, float, float]]) -> list[str]:
    """Ids of the clusters (id, lat, lon) inside any polygon or circle of any area, in the order given."""
    shapes = [(area.polygons, area.circles) for area in areas]
    return [
        cluster_id
        for cluster_id, lat, lon in clusters
        if any(
            any(in_polygon(lat, lon, ring) for ring in polygons) or any(in_circle(lat, lon, c) for c in circles)
            for polygons, circles in shapes
        )
    ]
