"""Server commands of ``bcast`` (merged at the top level by ``bcast/cli.py``).

Only Typer and the standard library are imported here; each command imports what it needs, so
``bcast agent`` keeps working on a device without the server's packages.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")

# --- bcast fleet ... -------------------------------------------------------------------------------

fleet_app = typer.Typer(help="Danh sách cụm loa và địa bàn hành chính.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")

EXIT_DATABASE = 1
EXIT_BAD_FILE = 2


@fleet_app.command("import")
def fleet_import(
    file: Path = typer.Argument(
        ...,
        metavar="FILE.csv",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Tệp CSV UTF-8 với các cột: cluster_id,province,district,commune,village,lat,lon.",
    ),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="Cơ sở dữ liệu (mặc định: biến môi trường BCAST_DATABASE_URL hoặc tệp SQLite của máy).",
    ),
    rename_duplicates: bool = typer.Option(
        False,
        "--rename-duplicates",
        help="Mã cụm loa bị trùng thì đổi thành <mã>-2, <mã>-3... thay vì báo lỗi (in ra từng thay đổi).",
    ),
) -> None:
    """Nhập danh sách cụm loa từ tệp CSV: tạo địa bàn hành chính, thêm hoặc cập nhật cụm loa.

    Tệp được kiểm tra toàn bộ trước; nếu có lỗi thì in từng lỗi kèm số dòng và không ghi gì vào cơ sở dữ liệu.
    Nhập lại cùng một tệp không thay đổi gì.
    """
    from rich.console import Console
    from rich.markup import escape
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import FleetFileError, decode_fleet_bytes, parse_fleet
    from broadcast_server.services.fleet_import import import_fleet
    from broadcast_server.settings import get_settings

    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    settings = get_settings(database_url=database_url)

    # Check the whole file before touching the database, so a bad file changes nothing at all.
    try:
        fleet = parse_fleet(decode_fleet_bytes(file.read_bytes()), rename_duplicates=rename_duplicates)
        rows = fleet.rows
        for renamed in fleet.renamed:
            err.print(f"[yellow]Cảnh báo:[/] {escape(str(renamed))}")
    except FleetFileError as exc:
        err.print(f"[bold red]Tệp {escape(file.name)} có {len(exc.problems)} lỗi, chưa nhập gì:[/]")
        for problem in exc.problems:
            err.print(escape(str(problem)))
        raise typer.Exit(EXIT_BAD_FILE) from None

    try:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            result = import_fleet(engine, rows)
        finally:
            engine.dispose()
    except (ArgumentError, OperationalError) as exc:
        err.print(f"[bold red]Không dùng được cơ sở dữ liệu:[/] {escape(str(exc).splitlines()[0])}")
        raise typer.Exit(EXIT_DATABASE) from None

    out.print(f"Đã nhập [bold]{len(rows)}[/] cụm loa từ {escape(file.name)} vào {escape(where)}:")
    out.print(f"  đơn vị hành chính mới: {result.created_units}")
    if result.reactivated_units:
        out.print(f"  đơn vị hành chính dùng lại: {result.reactivated_units}")
    out.print(f"  cụm loa mới: {result.created_clusters}")
    out.print(f"  cụm loa cập nhật: {result.updated_clusters}")
    out.print(f"  cụm loa không đổi: {result.unchanged_clusters}")
