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


def _open_database(database_url: str | None):
    """(settings, engine) on a migrated database, or a clear error and exit code 1."""
    from rich.console import Console
    from rich.markup import escape
    from sqlalchemy.exc import ArgumentError, OperationalError

    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.settings import get_settings

    settings = get_settings(database_url=database_url)
    try:
        upgrade(settings.database_url)
    except (ArgumentError, OperationalError) as exc:
        Console(stderr=True).print(f"[bold red]Không dùng được cơ sở dữ liệu:[/] {escape(str(exc).splitlines()[0])}")
        raise typer.Exit(EXIT_DATABASE) from None
    return settings, make_engine(settings.database_url)


@fleet_app.command("status")
def fleet_status_command(
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL hoặc tệp SQLite của máy)."
    ),
    all_communes: bool = typer.Option(False, "--all", help="Liệt kê cả các xã không có cụm loa mất kết nối."),
    json_output: bool = typer.Option(False, "--json", help="In JSON thay cho bảng."),
) -> None:
    """Tình trạng các cụm loa: cụm mất kết nối theo từng xã (từ lúc nào, lần cuối thấy, lỗi gần nhất, số lần
    rớt mạng 7 ngày qua), loa có ampli hỏng, cụm lệch đồng hồ, cụm chập chờn."""
    import json
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from broadcast_server.db.session import session_scope
    from broadcast_server.health.config import get_health_settings
    from broadcast_server.health.fleet_view import fleet_status
    from broadcast_server.statistics.periods import local_text

    _, engine = _open_database(database_url)
    threshold = get_health_settings().clock_offset_threshold_s
    try:
        with session_scope(engine) as session:
            view = fleet_status(session, datetime.now(UTC), clock_offset_threshold_s=threshold)
    finally:
        engine.dispose()
    if json_output:

        def iso(value):
            return value.isoformat() if isinstance(value, datetime) else value

        document = {
            "at": iso(view.at),
            "clusters": view.clusters,
            "online": view.online,
            "communes": [
                {
                    "name": c.name,
                    "clusters": c.clusters,
                    "online": c.online,
                    "offline": [{k: iso(v) for k, v in vars(o).items()} for o in c.offline],
                }
                for c in view.communes
                if c.offline or all_communes
            ],
            "faulty_amplifiers": [{k: iso(v) for k, v in vars(n).items()} for n in view.faulty_amplifiers],
            "amplifiers_off": [{k: iso(v) for k, v in vars(n).items()} for n in view.amplifiers_off],
            "refusing_commands": [{k: iso(v) for k, v in vars(n).items()} for n in view.refusing_commands],
            "clock_off": [{k: iso(v) for k, v in vars(n).items()} for n in view.clock_off],
            "flapping": [{k: iso(v) for k, v in vars(n).items()} for n in view.flapping],
        }
        typer.echo(json.dumps(document, ensure_ascii=False))
        return

    out = Console(soft_wrap=True)
    offline = view.clusters - view.online
    out.print(
        f"[bold]Tình trạng cụm loa lúc {local_text(view.at)}:[/] {view.online}/{view.clusters} trực tuyến, "
        f"{offline} mất kết nối."
    )
    causes = {
        "will": "mất kết nối đột ngột",
        "clean": "tắt máy",
        "heartbeat_timeout": "không gửi tín hiệu",
        None: "chưa từng kết nối",
    }
    table = Table(title="Cụm loa mất kết nối theo xã", show_lines=False)
    for title, justify in (
        ("Xã / thị trấn", "left"),
        ("Cụm loa", "left"),
        ("Mất kết nối từ", "left"),
        ("Lần cuối thấy", "left"),
        ("Nguyên nhân", "left"),
        ("Lỗi gần nhất", "left"),
        ("Số lần rớt (7 ngày)", "right"),
    ):
        table.add_column(title, justify=justify)  # type: ignore[arg-type]
    for commune in view.communes:
        if not commune.offline and not all_communes:
            continue
        label = f"{commune.name} ({commune.online}/{commune.clusters} trực tuyến)"
        if not commune.offline:
            table.add_row(escape(label), "—", "", "", "", "", "")
        for i, o in enumerate(commune.offline):
            table.add_row(
                escape(label) if i == 0 else "",
                escape(o.cluster_id),
                local_text(o.since) if o.since and o.cause else "—",
                local_text(o.last_seen_at) if o.cause else "—",
                causes.get(o.cause, o.cause or ""),
                escape(o.last_error or ""),
                str(o.drops_7d),
            )
        if commune.offline:
            table.add_section()
    if offline or all_communes:
        out.print(table)
    else:
        out.print("Tất cả cụm loa đang trực tuyến.")
    for notes, title, when in (
        (view.faulty_amplifiers, "Cụm loa báo hỏng ampli", "Lần cuối thấy"),
        (view.amplifiers_off, "Cụm loa bị tắt ampli theo lệnh: không phát, kể cả tin khẩn cấp", "Lần cuối thấy"),
        (view.refusing_commands, "Cụm loa từ chối mọi lệnh: chưa có khóa của máy chủ (chưa đăng ký bộ thu)", "Từ lúc"),
    ):
        if notes:
            listed = Table(title=title)
            for column in ("Cụm loa", "Xã / thị trấn", "Trực tuyến", when):
                listed.add_column(column)
            for n in notes:
                listed.add_row(escape(n.cluster_id), escape(n.commune), "có" if n.online else "không", local_text(n.at))
            out.print(listed)
    if view.clock_off:
        clocks = Table(title=f"Cụm loa lệch đồng hồ quá {view.clock_offset_threshold_s:g} giây")
        for title, justify in (("Cụm loa", "left"), ("Xã / thị trấn", "left"), ("Lệch (giây)", "right")):
            clocks.add_column(title, justify=justify)  # type: ignore[arg-type]
        for n in view.clock_off:
            clocks.add_row(escape(n.cluster_id), escape(n.commune), f"{n.value:+.1f}")
        out.print(clocks)
    if view.flapping:
        flaps = Table(title=f"Cụm loa chập chờn (rớt từ {view.flapping_min_drops} lần trở lên trong 7 ngày)")
        for title, justify in (("Cụm loa", "left"), ("Xã / thị trấn", "left"), ("Số lần rớt", "right")):
            flaps.add_column(title, justify=justify)  # type: ignore[arg-type]
        for n in view.flapping:
            flaps.add_row(escape(n.cluster_id), escape(n.commune), str(n.value))
        out.print(flaps)


@fleet_app.command("uptime")
def fleet_uptime_command(
    days: int = typer.Option(7, "--days", min=1, max=366, help="Số ngày tính đến hiện tại."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
    json_output: bool = typer.Option(False, "--json", help="In JSON thay cho bảng."),
) -> None:
    """Tỷ lệ thời gian trực tuyến và số lần rớt mạng của từng cụm loa trong kỳ."""
    import json
    from datetime import UTC, datetime, timedelta

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from broadcast_server.db.session import session_scope
    from broadcast_server.health.fleet_view import uptime
    from broadcast_server.statistics.periods import local_text

    _, engine = _open_database(database_url)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    try:
        with session_scope(engine) as session:
            rows = uptime(session, start, now, now)
    finally:
        engine.dispose()
    if json_output:
        typer.echo(
            json.dumps(
                [
                    {"cluster_id": r.cluster_id, "commune": r.commune, "uptime": r.uptime, "drops": r.drops}
                    for r in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"Thời gian trực tuyến từ {local_text(start)} đến {local_text(now)}")
    for title, justify in (
        ("Xã / thị trấn", "left"),
        ("Cụm loa", "left"),
        ("Trực tuyến", "right"),
        ("Số lần rớt", "right"),
    ):
        table.add_column(title, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(escape(r.commune), escape(r.cluster_id), f"{r.uptime * 100:.1f}%".replace(".", ","), str(r.drops))
    Console().print(table)
