"""The fleet as an inline SVG map: cluster coordinates on a plain base, no internet needed. Pure.

Points are placed in Web Mercator, so when a tile server is configured (BCAST_MAP_TILE_URL, with
{z}, {x} and {y}) its tiles line up under them; without one the base is a plain background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

WIDTH = 720
# Commune colours (no red: red means offline), distinguishable in print and for most colour-blind readers.
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e")
OFFLINE = "#d62728"
MAX_ZOOM = 18


@dataclass(frozen=True)
class MapPoint:
    cluster_id: str
    lat: float
    lon: float
    commune: str
    online: bool


def _mercator(lat: float, lon: float) -> tuple[float, float]:
    lat = max(-85.0, min(85.0, lat))
    x = (lon + 180.0) / 360.0
    y = (1.0 - math.log(math.tan(math.radians(lat)) + 1.0 / math.cos(math.radians(lat))) / math.pi) / 2.0
    return x, y


def commune_colours(communes: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(communes)}


def fleet_map_svg(points: Sequence[MapPoint], colours: dict[str, str], *, tile_url: str | None = None) -> str:
    """The SVG markup; an empty fleet gives a small placeholder."""
    if not points:
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} 120' width='100%' role='img'>"
            "<rect width='100%' height='100%' fill='#eef2f5'/><text x='50%' y='50%' text-anchor='middle'>"
            "Chưa có cụm loa nào</text></svg>"
        )
    projected = [_mercator(p.lat, p.lon) for p in points]
    xs, ys = [x for x, _ in projected], [y for _, y in projected]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    pad = span * 0.08
    x0, x1 = min(xs) - pad, max(xs) + pad
    y0, y1 = min(ys) - pad, max(ys) + pad
    scale = WIDTH / (x1 - x0)
    height = max(240.0, min(720.0, (y1 - y0) * scale))
    # Keep the aspect: widen the vertical range when the box is clamped.
    y_mid = (y0 + y1) / 2
    y0, y1 = y_mid - height / scale / 2, y_mid + height / scale / 2
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height:.0f}' width='100%' role='img' "
        "aria-label='Bản đồ cụm loa' class='fleet-map'>",
        "<rect width='100%' height='100%' fill='#eef2f5'/>",
    ]
    if tile_url:
        parts.extend(_tiles(tile_url, x0, y0, x1, y1, scale))
    # Online first, offline on top so a red point is never hidden under a blue one.
    order = sorted(range(len(points)), key=lambda i: points[i].online, reverse=True)
    for i in order:
        point, (x, y) = points[i], projected[i]
        cx, cy = (x - x0) * scale, (y - y0) * scale
        state = "trực tuyến" if point.online else "mất kết nối"
        fill = colours.get(point.commune, PALETTE[0]) if point.online else OFFLINE
        radius = 8 if point.online else 10
        parts.append(
            f"<a href='/fleet/clusters/{quote(point.cluster_id, safe='')}'>"
            f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='{radius}' fill='{fill}' stroke='#fff' stroke-width='2' "
            f"data-cluster='{escape(point.cluster_id, quote=True)}'>"
            f"<title>{escape(point.cluster_id)} · {escape(point.commune)} · {state}</title></circle></a>"
        )
    parts.extend(_commune_labels(points, projected, x0, y0, scale))
    parts.append("</svg>")
    return "".join(parts)


def _commune_labels(
    points: Sequence[MapPoint], projected: Sequence[tuple[float, float]], x0: float, y0: float, scale: float
) -> list[str]:
    """Each commune's name at the middle of its clusters, with a white halo so it reads over the points."""
    sums: dict[str, list[float]] = {}
    for point, (x, y) in zip(points, projected, strict=True):
        acc = sums.setdefault(point.commune, [0.0, 0.0, 0.0])
        acc[0], acc[1], acc[2] = acc[0] + x, acc[1] + y, acc[2] + 1
    labels = []
    for name, (sx, sy, n) in sums.items():
        cx, cy = (sx / n - x0) * scale, (sy / n - y0) * scale
        cx = min(max(cx, 60.0), WIDTH - 60.0)
        labels.append(
            f"<text x='{cx:.1f}' y='{cy:.1f}' text-anchor='middle' font-size='22' font-weight='bold' fill='#1b2430' "
            f"stroke='#fff' stroke-width='4' paint-order='stroke' pointer-events='none'>{escape(name)}</text>"
        )
    return labels


def _tiles(url: str, x0: float, y0: float, x1: float, y1: float, scale: float) -> list[str]:
    zoom = int(max(0, min(MAX_ZOOM, math.floor(math.log2(max(1.0, WIDTH / 256 / (x1 - x0)))))))
    n = 2**zoom
    size = scale / n
    out = []
    for tx in range(max(0, math.floor(x0 * n)), min(n - 1, math.floor(x1 * n)) + 1):
        for ty in range(max(0, math.floor(y0 * n)), min(n - 1, math.floor(y1 * n)) + 1):
            href = escape(url.replace("{z}", str(zoom)).replace("{x}", str(tx)).replace("{y}", str(ty)), quote=True)
            out.append(
                f"<image href='{href}' x='{(tx / n - x0) * scale:.1f}' y='{(ty / n - y0) * scale:.1f}' "
                f"width='{size:.1f}' height='{size:.1f}' preserveAspectRatio='none'/>"
            )
    return out
