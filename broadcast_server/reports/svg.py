"""Charts as inline SVG (no script, no external file), so the HTML page prints and opens anywhere. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from broadcast_server.reports.numbers import vn_float

FONT = "font-family='DejaVu Sans, Arial, sans-serif'"


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str, chart_id: str) -> str:
    """Horizontal bars, one per label (long Vietnamese commune names fit on the left)."""
    row_h, left, right, top = 22, 190, 70, 34
    width = 720
    height = top + row_h * max(1, len(labels)) + 16
    peak = max(values, default=0) or 1
    scale = (width - left - right) / peak
    parts = [
        f"<svg id='{chart_id}' xmlns='http://www.w3.org/2000/svg' role='img' viewBox='0 0 {width} {height}' "
        f"width='100%' {FONT} font-size='12'>",
        f"<title>{escape(title)}</title>",
        f"<text x='{width / 2}' y='18' text-anchor='middle' font-weight='bold' font-size='14'>{escape(title)}</text>",
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        bar = max(0.0, value * scale)
        parts.append(
            f"<text x='{left - 6}' y='{y + 15}' text-anchor='end'>{escape(label)}</text>"
            f"<rect x='{left}' y='{y + 3}' width='{bar:.1f}' height='{row_h - 6}' fill='#1f5fa8'>"
            f"<title>{escape(label)}: {vn_float(value)} {escape(unit)}</title></rect>"
            f"<text x='{left + bar + 4:.1f}' y='{y + 15}'>{vn_float(value)}</text>"
        )
    parts.append(
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - 12}' stroke='#333'/>"
        f"<text x='{width - 4}' y='{height - 2}' text-anchor='end' font-size='11'>{escape(unit)}</text></svg>"
    )
    return "".join(parts)


def line_chart(points: Sequence[tuple[date, float | None]], *, title: str, chart_id: str) -> str:
    """A share (0..1) per day as a line, 0–100% on the vertical axis; days without data leave a gap."""
    width, height = 720, 260
    left, right, top, bottom = 48, 16, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(points) - 1)
    parts = [
        f"<svg id='{chart_id}' xmlns='http://www.w3.org/2000/svg' role='img' viewBox='0 0 {width} {height}' "
        f"width='100%' {FONT} font-size='11'>",
        f"<title>{escape(title)}</title>",
        f"<text x='{width / 2}' y='18' text-anchor='middle' font-weight='bold' font-size='14'>{escape(title)}</text>",
    ]
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - pct / 100)
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' stroke='#ddd'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end'>{pct}%</text>"
        )
    segments: list[list[str]] = [[]]
    for i, (_day, share) in enumerate(points):
        if share is None:
            segments.append([])
            continue
        x = left + plot_w * i / n
        y = top + plot_h * (1 - share)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    for segment in segments:
        if len(segment) == 1:
            x, y = segment[0].split(",")
            parts.append(f"<circle cx='{x}' cy='{y}' r='2' fill='#c0392b'/>")
        elif segment:
            parts.append(f"<polyline fill='none' stroke='#c0392b' stroke-width='2' points='{' '.join(segment)}'/>")
    for i, (day, _) in enumerate(points):
        if day.day == 1 or i == 0:
            x = left + plot_w * i / n
            parts.append(f"<text x='{x:.1f}' y='{height - bottom + 16}' text-anchor='middle'>{day:%d/%m}</text>")
    parts.append("</svg>")
    return "".join(parts)
