"""`bcast report ...`: figures for people, printed as tables."""

from __future__ import annotations

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

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.db.session import session_scope
    from broadcast_server.services.coverage_query import NotFound, broadcast_coverage, latest_broadcast_id
    from broadcast_server.settings import get_settings

    err = Console(stderr=True)
    settings = get_settings(database_url=database_url)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
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
    finally:
        engine.dispose()
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
