"""Báo cáo: per-commune figures for a period with bar charts (the quarterly report's SVG code), and downloads."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import date, timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.console.access import ConsolePrincipal, FormProblem
from broadcast_server.console.templating import page
from broadcast_server.reports.quarterly import QuarterlyReport, build_quarterly
from broadcast_server.reports.svg import bar_chart
from broadcast_server.reports.writers import write_csv, write_xlsx
from broadcast_server.statistics.figures import CommuneFigures, total_figures
from broadcast_server.statistics.periods import Quarter, QuarterError, local_day
from broadcast_server.statistics.queries import commune_figures

router = APIRouter()
MAX_DAYS = 400
DOWNLOADS = {
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", write_xlsx),
    "csv": ("text/csv; charset=utf-8", write_csv),
}


def quarter_of(day: date) -> Quarter:
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def recent_quarters(today: date, count: int = 4) -> list[Quarter]:
    quarters = [quarter_of(today)]
    while len(quarters) < count:
        first = quarters[-1].start - timedelta(days=1)
        quarters.append(quarter_of(first))
    return quarters


def in_scope(session, principal: Principal, rows: list[CommuneFigures]) -> list[CommuneFigures]:
    visible = visible_unit_ids(session, principal)
    return rows if visible is None else [r for r in rows if r.unit_id in visible]


def charts(rows: list[CommuneFigures]) -> list[str]:
    labels = [r.name for r in rows]
    return [
        bar_chart(labels, [r.bulletins_played for r in rows], title="Số bài đã phát", unit="bài", chart_id="c-played"),
        bar_chart(labels, [r.broadcast_hours for r in rows], title="Thời lượng phát", unit="giờ", chart_id="c-hours"),
        bar_chart(
            labels, [r.played_share * 100 for r in rows], title="Tỷ lệ cụm loa đã phát", unit="%", chart_id="c-share"
        ),
    ]


@router.get("/reports")
def reports(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: ConsolePrincipal,
    start: str = "",
    end: str = "",
) -> Response:
    today = local_day(runtime.clock.now())
    current = quarter_of(today)
    try:
        first = date.fromisoformat(start) if start else current.start
        last = date.fromisoformat(end) if end else min(today, current.end - timedelta(days=1))
    except ValueError as exc:
        raise FormProblem("Ngày không hợp lệ: hãy chọn lại khoảng thời gian.") from exc
    if last < first:
        raise FormProblem("Ngày kết thúc phải sau ngày bắt đầu.")
    if (last - first).days > MAX_DAYS:
        raise FormProblem(f"Khoảng thời gian dài nhất là {MAX_DAYS} ngày.")
    rows = in_scope(session, principal, commune_figures(session, first, last + timedelta(days=1)))
    return page(
        request,
        "reports.html",
        title="Báo cáo",
        rows=rows,
        total=total_figures(rows),
        charts=charts(rows) if rows else [],
        start=first,
        end=last,
        quarters=recent_quarters(today),
    )


@router.get("/reports/quarterly.{fmt}")
def quarterly_download(
    fmt: str, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal, quarter: str = ""
) -> Response:
    """The quarterly report file, limited to the communes of the principal's area."""
    if fmt not in DOWNLOADS:
        raise FormProblem("Chỉ tải được tệp XLSX hoặc CSV.")
    try:
        chosen = Quarter.parse(quarter)
    except QuarterError as exc:
        raise FormProblem(str(exc)) from exc
    report: QuarterlyReport = build_quarterly(session, chosen, now=runtime.clock.now())
    communes = in_scope(session, principal, report.communes)
    report = dataclasses.replace(report, communes=communes, total=total_figures(communes))
    media_type, write = DOWNLOADS[fmt]
    with tempfile.TemporaryDirectory(prefix="bcast-report-") as work:
        path = write(report, Path(work) / f"{report.file_stem}.{fmt}")
        content = path.read_bytes()
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{report.file_stem}.{fmt}"'},
    )
