"""`bcast schedule ...`: schedule files in and out, and previews of what a cluster will play."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

app = typer.Typer()
schedule_app = typer.Typer(
    help="Lịch phát: áp dụng tệp lịch, liệt kê và hủy khung giờ, xuất lịch, xem trước.", no_args_is_help=True
)
app.add_typer(schedule_app, name="schedule")

EXIT_BAD_FILE = 2
EXIT_CONFLICTS = 3


@schedule_app.command("apply")
def apply_command(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Tệp lịch YAML (một hoặc nhiều)."),
    yes: bool = typer.Option(False, "--yes", help="Vẫn áp dụng khi có chương trình chồng giờ (theo quy tắc in ra)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Chỉ kiểm tra, không lưu gì."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
) -> None:
    """Áp dụng tệp lịch: kiểm tra toàn bộ, báo chương trình chồng giờ trước khi lưu; áp dụng lại không đổi gì."""
    from rich.console import Console
    from rich.markup import escape

    from broadcast_server.accounts.principal import CLI_PRINCIPAL
    from broadcast_server.audit.log import record
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.scheduling.apply import apply_schedule
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.scheduling.rules_vi import rule_in_vietnamese
    from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml

    out, err = Console(), Console(stderr=True)
    with open_database(database_url) as (settings, engine):
        for file in files:
            try:
                spec = parse_schedule_yaml(file.read_text(encoding="utf-8"))
                with session_scope(engine) as session, err.status(f"Đang tạo âm thanh cho {file.name}…") as status:
                    result = apply_schedule(
                        session,
                        spec,
                        audio_dir=settings.audio_dir,
                        base_dir=file.parent,
                        public_url=settings.public_url,
                        voice=settings.tts_voice,
                        target_lufs=settings.target_lufs,
                        accept_conflicts=yes,
                        dry_run=dry_run,
                        progress=lambda what: status.update(f"Đang tạo âm thanh: {escape(what)}"),
                    )
                    if result.applied and not dry_run and (result.created or result.updated):
                        # Applying the same file again changes nothing, so it leaves no trace either.
                        record(
                            session,
                            principal=CLI_PRINCIPAL,
                            action="schedule.apply",
                            object_type="schedule_file",
                            object_id=file.name[:64],
                            detail={
                                "path": str(file.resolve()),
                                "created": result.created,
                                "updated": result.updated,
                                "unchanged": result.unchanged,
                                "conflicts": len(result.conflicts),
                            },
                        )
            except (ScheduleFileError, UnicodeDecodeError) as exc:
                problems = getattr(exc, "problems", [str(exc)])
                err.print(f"[bold red]Tệp {escape(file.name)} có {len(problems)} lỗi, chưa áp dụng gì:[/]")
                for problem in problems:
                    err.print(f"  {escape(problem)}")
                raise typer.Exit(EXIT_BAD_FILE) from None
            for c in result.conflicts:
                when = c.first_at.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
                err.print(
                    f"[yellow]Chồng giờ:[/] {c.first_slot} và {c.second_slot} trên {c.clusters} cụm loa "
                    f"(lần đầu {when}, chồng {c.overlap_s:.0f} giây). Quy tắc: {escape(rule_in_vietnamese(c.rule))}."
                )
            if not result.applied:
                if dry_run:
                    out.print(f"{file.name}: hợp lệ (chạy thử, chưa lưu).")
                    continue
                err.print(
                    "[bold red]Chưa áp dụng:[/] có chương trình chồng giờ. Thêm --yes để áp dụng theo quy tắc trên."
                )
                raise typer.Exit(EXIT_CONFLICTS)
            out.print(f"{file.name}: thêm {result.created}, sửa {result.updated}, giữ nguyên {result.unchanged}.")


@schedule_app.command("list")
def list_command(
    show_all: bool = typer.Option(False, "--all", help="Cả khung giờ đã kết thúc và đã hủy."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
) -> None:
    """Liệt kê các khung giờ phát: mã, giờ, chương trình, lặp lại, nơi phát, số cụm loa, trạng thái."""
    from datetime import date, time

    from rich.console import Console
    from rich.table import Table
    from sqlmodel import select

    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.db.types import utcnow
    from broadcast_server.models import Programme, Slot
    from broadcast_server.scheduling.catalog import target_spec
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.scheduling.slot_reach import TargetIndex
    from broadcast_server.scheduling.slot_words import ACTIVE, places_of, repetition_vi, slot_state

    table = Table(title="Các khung giờ phát" + ("" if show_all else " đang áp dụng"))
    for column in ("Mã", "Giờ", "Chương trình", "Lặp lại", "Từ ngày", "Nơi phát", "Cụm loa", "Trạng thái"):
        table.add_column(column, justify="right" if column == "Cụm loa" else "left")
    now = utcnow()
    with open_database(database_url) as (_settings, engine), session_scope(engine) as session:
        index = TargetIndex.load(session)
        titles = dict(session.exec(select(Programme.id, Programme.title)).all())
        for slot in session.exec(select(Slot).order_by(Slot.start_time, Slot.id)):  # type: ignore[arg-type]
            first = datetime.combine(date.fromisoformat(slot.start_date), time.fromisoformat(slot.start_time), LOCAL_TZ)
            until = date.fromisoformat(slot.until) if slot.until else None
            state = slot_state(slot.rule, first, until, slot.cancelled_at is not None, now)
            if not show_all and state != ACTIVE:
                continue
            target = target_spec(slot.target)
            repeat = repetition_vi(slot.rule) + (f" (đến {until:%d/%m/%Y})" if until else "")
            table.add_row(
                slot.id,
                slot.start_time,
                titles.get(slot.programme_id, slot.programme_id),
                repeat,
                f"{first:%d/%m/%Y}",
                ", ".join(places_of(target.units, target.groups, target.clusters)),
                str(len(index.reach(slot).reached)),
                state,
            )
    Console().print(table)


@schedule_app.command("cancel")
def cancel_command(
    slot_id: str = typer.Argument(..., help="Mã khung giờ (slot) trong tệp lịch, ví dụ chuyen-doi-so-thu-hai."),
    yes: bool = typer.Option(False, "--yes", help="Không hỏi lại."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
) -> None:
    """Hủy một khung giờ phát: các buổi chưa phát bị gỡ khỏi cụm loa (máy chủ đang chạy gửi lại trong vài giây).

    Buổi đã phát vẫn được tính trong thống kê. Áp dụng lại tệp lịch còn khung giờ này sẽ khôi phục nó.
    """
    from rich.console import Console
    from rich.markup import escape

    from broadcast_server.accounts.principal import CLI_PRINCIPAL
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import Programme, Slot
    from broadcast_server.scheduling.cancel import SlotAlreadyCancelled, SlotNotFound, cancel_slot
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.scheduling.slot_reach import slot_reach

    out, err = Console(), Console(stderr=True)
    with open_database(database_url) as (_settings, engine):
        if not yes:
            with session_scope(engine) as session:
                slot = session.get(Slot, slot_id)
                if slot is not None and slot.cancelled_at is None:
                    programme = session.get(Programme, slot.programme_id)
                    title = programme.title if programme else slot.programme_id
                    reached = len(slot_reach(session, slot).reached)
                    if not typer.confirm(f"Hủy khung giờ {slot_id} ({title}, {reached} cụm loa)?"):
                        raise typer.Exit(1)
        try:
            with session_scope(engine) as session:
                cancelled = cancel_slot(session, slot_id, principal=CLI_PRINCIPAL)
        except SlotNotFound:
            err.print(
                f"[bold red]Không có khung giờ[/] {escape(slot_id)!r} (xem các mã bằng: bcast schedule list --all)."
            )
            raise typer.Exit(2) from None
        except SlotAlreadyCancelled as exc:
            when = exc.cancelled_at.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
            err.print(f"Khung giờ {escape(slot_id)} đã bị hủy lúc {when}; không đổi gì.")
            raise typer.Exit(1) from None
    out.print(
        f"Đã hủy khung giờ {escape(slot_id)} ({escape(cancelled.title)}, {cancelled.clusters} cụm loa). "
        "Máy chủ đang chạy sẽ gửi lịch mới cho các cụm loa trong vài giây."
    )


@schedule_app.command("export")
def export_command(
    output: Path | None = typer.Option(None, "-o", "--output", help="Ghi ra tệp (mặc định: in ra màn hình)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
) -> None:
    """Xuất toàn bộ lịch phát ra tệp YAML (để lưu trong hệ thống quản lý phiên bản)."""
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.scheduling.export import export_schedule

    with open_database(database_url) as (settings, engine):
        with session_scope(engine) as session:
            text = export_schedule(session)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@schedule_app.command("preview")
def preview_command(
    cluster: list[str] = typer.Option([], "--cluster", help="Mã cụm loa (có thể nhắc lại)."),
    unit: str | None = typer.Option(None, "--unit", help="Địa bàn, ví dụ 'Quảng Ngãi/Bình Sơn/Xã Bình Hải'."),
    start: str = typer.Option(..., "--from", help="Từ lúc (giờ Việt Nam), ví dụ 2026-11-23T05:00."),
    end: str = typer.Option(..., "--to", help="Đến lúc (giờ Việt Nam)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL)."
    ),
) -> None:
    """Xem trước một cụm loa (hoặc một xã) sẽ phát gì trong khoảng thời gian, theo đúng mã agent dùng để phát."""
    from rich.console import Console
    from rich.table import Table

    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.domain.targeting import descendants
    from broadcast_server.scheduling.preview import preview
    from broadcast_server.scheduling.recurrence import LOCAL_TZ
    from broadcast_server.scheduling.targets import unit_paths
    from broadcast_server.services.tree_query import load_cluster_units, load_units

    err = Console(stderr=True)
    try:
        a = datetime.fromisoformat(start).replace(tzinfo=LOCAL_TZ)
        b = datetime.fromisoformat(end).replace(tzinfo=LOCAL_TZ)
    except ValueError:
        err.print("[bold red]Thời gian không hợp lệ;[/] dùng dạng 2026-11-23T05:00 (giờ Việt Nam).")
        raise typer.Exit(2) from None
    if b <= a:
        err.print("[bold red]--to phải sau --from.[/]")
        raise typer.Exit(2)
    with open_database(database_url) as (settings, engine):
        with session_scope(engine) as session:
            cluster_units = load_cluster_units(session)
            ids = list(cluster)
            if unit:
                units = load_units(session)
                paths = unit_paths(units)
                if unit not in paths:
                    err.print(f"[bold red]Không có địa bàn[/] {unit!r}")
                    raise typer.Exit(2)
                reached = descendants(units, [paths[unit]])
                ids += sorted(c for c, u in cluster_units.items() if u in reached)
            unknown = [c for c in ids if c not in cluster_units]
            if not ids or unknown:
                err.print(f"[bold red]Cần --cluster hoặc --unit hợp lệ.[/] Không có: {', '.join(unknown)}")
                raise typer.Exit(2)
            result = preview(session, settings.public_url, ids, a, b)
    timelines: dict[tuple, list[str]] = {}
    for cluster_id, plays in result.items():
        timelines.setdefault(tuple((p.entry_id, p.item_index, p.start) for p in plays), []).append(cluster_id)
    console = Console()
    for clusters in timelines.values():
        plays = result[clusters[0]]
        table = Table(title=f"{len(clusters)} cụm loa: {', '.join(clusters[:5])}{'…' if len(clusters) > 5 else ''}")
        for column in ("Bắt đầu", "Kết thúc", "Chương trình", "Mục", "Trễ so với lịch"):
            table.add_column(column)
        for p in plays:
            table.add_row(
                p.start.astimezone(LOCAL_TZ).strftime("%d/%m %H:%M:%S"),
                p.end.astimezone(LOCAL_TZ).strftime("%H:%M:%S"),
                p.entry_id.split("@")[0],
                p.title,
                f"{p.delay_s:.0f} giây" if p.delay_s >= 1 else "",
            )
        console.print(table)
