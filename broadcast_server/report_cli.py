"""`bcast report ...`: figures for people, printed as tables."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()
report_app = typer.Typer(help="Báo cáo, thống kê.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("coverage")
def coverage(
    broadcast: str | None = typer.Option(None, "--broadcast", help="Mã lượt phát (mặc định: lượt mới nhất)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
    json_output: bool = typer.Option(False, "--json", help="In JSON thay cho bảng."),
) -> None:
    """Độ phủ của một lượt phát theo từng xã: số cụm loa, đã phát, chưa phát."""
    import json

    from rich.console import Console
    from rich.table import Table

    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.services.coverage_query import NotFound, broadcast_coverage, latest_broadcast_id

    err = Console(stderr=True)
    with open_database(database_url) as (settings, engine):
        with session_scope(engine) as session:
            broadcast_id = broadcast or latest_broadcast_id(session)
            if broadcast_id is None:
                err.print("Chưa có lượt phát nào.")
                raise typer.Exit(1)
            try:
                result, states = broadcast_coverage(session, broadcast_id)
            except NotFound:
                err.print(f"[bold red]Không có lượt phát[/] {broadcast_id}")
                raise typer.Exit(2) from None
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "broadcast_id": broadcast_id,
                    "communes": [vars(r) for r in result.rows],
                    "total": vars(result.total),
                    "states": states,
                },
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"Độ phủ lượt phát {broadcast_id}")
    for title in ("Xã / thị trấn", "Số cụm loa", "Đã phát", "Chưa phát"):
        table.add_column(title, justify="left" if title.startswith("Xã") else "right")
    for row in (*result.rows, result.total):
        table.add_row(row.name, str(row.clusters), str(row.played), str(row.not_played))
    Console().print(table)


EXIT_BAD_ARGUMENT = 2


@report_app.command("quarterly")
def quarterly(
    quarter: str = typer.Option(..., "--quarter", "-q", help="Quý cần báo cáo, ví dụ 2026Q4."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Thư mục ghi báo cáo (tạo nếu chưa có)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Chuyển thêm bảng XLSX sang PDF bằng LibreOffice (nếu đã cài)."),
) -> None:
    """Báo cáo quý gửi huyện: tệp XLSX (có biểu đồ), trang HTML in được (biểu đồ SVG) và CSV cho máy.

    Số liệu theo từng xã: số lượt tin, bài đã phát, thời lượng phát, tỷ lệ cụm loa phát, tin khẩn cấp,
    số lượt theo chuyên mục (ví dụ “Chuyển đổi số”), và tỷ lệ cụm loa trực tuyến theo ngày.
    """
    from rich.console import Console
    from rich.markup import escape
    from sqlalchemy.exc import ArgumentError, OperationalError

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.reports.quarterly import build_quarterly
    from broadcast_server.reports.writers import write_quarterly
    from broadcast_server.settings import get_settings
    from broadcast_server.statistics.periods import Quarter, QuarterError

    err = Console(stderr=True, soft_wrap=True)
    try:
        period = Quarter.parse(quarter)
    except QuarterError as exc:
        err.print(f"[bold red]Lỗi:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_ARGUMENT) from None
    if output.exists() and not output.is_dir():
        err.print(f"[bold red]Lỗi:[/] {escape(str(output))} không phải là thư mục.")
        raise typer.Exit(EXIT_BAD_ARGUMENT)
    settings = get_settings(database_url=database_url)
    try:
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            with session_scope(engine) as session:
                report = build_quarterly(session, period)
        finally:
            engine.dispose()
    except (ArgumentError, OperationalError) as exc:
        err.print(f"[bold red]Không dùng được cơ sở dữ liệu:[/] {escape(str(exc).splitlines()[0])}")
        raise typer.Exit(1) from None
    files = write_quarterly(report, output)
    if pdf:
        from broadcast_server.reports.pdf import PdfError, xlsx_to_pdf

        try:
            files.append(xlsx_to_pdf(files[2], output))
        except PdfError as exc:
            err.print(f"[yellow]Không tạo được PDF:[/] {escape(str(exc))}")
    out = Console(soft_wrap=True)
    t = report.total
    out.print(
        f"Báo cáo {period.title} ({escape(report.area)}): {t.bulletins_played} lượt tin, bài; "
        f"{_hours(t.broadcast_seconds)} giờ phát; {len(report.communes)} xã, thị trấn. Đã ghi:"
    )
    for path in files:
        out.print(f"  {escape(str(path))}")


def _hours(seconds: float) -> str:
    from broadcast_server.reports.numbers import vn_float

    return vn_float(seconds / 3600)


@report_app.command("broadcast")
def broadcast_statistics(
    broadcast: str | None = typer.Argument(
        None,
        help="Mã lượt phát (mặc định: lượt mới nhất), hoặc mã một lần phát theo lịch "
        "('<khung giờ>@<giờ UTC>#<mục>', như trong báo cáo của cụm loa).",
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
    json_output: bool = typer.Option(False, "--json", help="In JSON thay cho bảng."),
) -> None:
    """Kết quả một lượt phát: số cụm loa được gửi, đã nhận, đã phát, phát trễ, lỗi, quá giờ, kèm lý do."""
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.services.coverage_query import latest_broadcast_id
    from broadcast_server.statistics.queries import NotFound, broadcast_figures

    err = Console(stderr=True)
    with open_database(database_url) as (settings, engine):
        with session_scope(engine) as session:
            broadcast_id = broadcast or latest_broadcast_id(session)
            if broadcast_id is None:
                err.print("Chưa có lượt phát nào.")
                raise typer.Exit(1)
            try:
                figures = broadcast_figures(session, broadcast_id)
            except NotFound:
                err.print(f"[bold red]Không có lượt phát hay lần phát theo lịch[/] {escape(broadcast_id)}")
                raise typer.Exit(2) from None
    if json_output:
        typer.echo(json.dumps(figures.as_dict(), ensure_ascii=False))
        return
    c = figures.counts
    table = Table(title=f"Kết quả lượt phát {escape(broadcast_id)}")
    table.add_column("Chỉ tiêu")
    table.add_column("Số cụm loa", justify="right")
    for label, value in (
        ("Được gửi", c.targeted),
        ("Đã nhận lệnh (có báo cáo)", c.delivered),
        ("Đã phát trọn vẹn", c.played),
        ("  trong đó phát trễ", c.late),
        ("Lỗi", c.failed),
        ("Quá giờ, không phát", c.missed),
        ("Từ chối (lệnh hết hạn)", c.rejected),
        ("Bị dừng giữa chừng", c.stopped),
        ("Chưa có kết quả", figures.pending),
    ):
        table.add_row(label, str(value))
    console = Console()
    console.print(table)
    labels = {"failed": "Lỗi", "missed": "Quá giờ", "rejected": "Từ chối", "stopped": "Bị dừng"}
    for state, reasons in figures.reasons.items():
        console.print(f"[bold]{labels.get(state, state)}[/] — lý do:")
        for reason, count in reasons.items():
            console.print(f"  {count} × {escape(reason)}")
