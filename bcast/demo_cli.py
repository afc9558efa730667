"""`bcast demo`: the whole system on this machine, with no external service."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()


@app.command("demo")
def demo(
    fleet: Path | None = typer.Option(
        None, "--fleet", exists=True, dir_okay=False, help="Tệp CSV cụm loa (mặc định: huyện Hớn Quản, 202 cụm)."
    ),
    json_output: bool = typer.Option(False, "--json", help="In một đối tượng JSON thay cho bảng."),
    keep: Path | None = typer.Option(
        None, "--keep", file_okay=False, help="Giữ lại cơ sở dữ liệu (DIR/bcast.sqlite3) và âm thanh (DIR/audio)."
    ),
    timeout: float = typer.Option(80.0, "--timeout", min=5, help="Chờ báo cáo tối đa bao nhiêu giây."),
    offline_fraction: float | None = typer.Option(
        None, "--offline-fraction", min=0.0, max=1.0, help="Tỷ lệ cụm loa mất kết nối trong lúc chạy thử (0–1)."
    ),
    seed: int = typer.Option(0, "--seed", help="Hạt giống ngẫu nhiên để chọn cụm mất kết nối (lặp lại được)."),
    schedule: Path | None = typer.Option(
        None, "--schedule", exists=True, dir_okay=False, help="Chạy thử một tệp lịch phát thay cho một bản tin."
    ),
    days: int | None = typer.Option(
        None,
        "--days",
        min=1,
        max=62,
        help="Số ngày mô phỏng (thời gian tăng tốc): lịch phát với --schedule (mặc định 7), "
        "hoặc mỗi ngày hai bản tin của huyện, rồi so số liệu báo cáo với thực tế mô phỏng.",
    ),
    cut_commune: str | None = typer.Option(
        None, "--cut-commune", help="Cắt mạng một xã trong 10 giờ của ngày thứ hai (phát từ lịch lưu trên máy)."
    ),
    no_emergency: bool = typer.Option(False, "--no-emergency", help="Không phát bản tin khẩn cấp giữa kỳ."),
) -> None:
    """Chạy thử toàn hệ thống trên máy này: máy chủ MQTT, máy chủ, đội cụm loa mô phỏng; phát một bản tin."""
    import json
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from bcast.demo import DemoError, run_demo

    logging.basicConfig(level=logging.ERROR)
    err = Console(stderr=True)
    if schedule is None and days is not None:
        from bcast.demo import default_fleet
        from bcast.month_demo import run_month_demo

        with err.status(f"Đang mô phỏng {days} ngày phát bản tin (thời gian tăng tốc)…"):
            document = run_month_demo(
                fleet or default_fleet(), days=days, offline_fraction=offline_fraction or 0.0, seed=seed
            )
        typer.echo(json.dumps(document, ensure_ascii=False, indent=None if json_output else 2))
        if not document["report_equals_ground_truth"]:
            raise typer.Exit(1)
        return
    if schedule is not None:
        days = days or 7
        from bcast.demo import default_fleet
        from bcast.schedule_demo import Cut, run_schedule_demo

        with err.status(f"Đang mô phỏng {days} ngày lịch phát (thời gian tăng tốc)…"):
            document = run_schedule_demo(
                fleet or default_fleet(),
                schedule,
                days=days,
                offline_fraction=offline_fraction or 0.0,
                seed=seed,
                emergency=not no_emergency,
                cut=Cut(cut_commune, (24 if days >= 2 else 0) + 4, 10) if cut_commune else None,
                keep=keep,
            )
        typer.echo(json.dumps(document, ensure_ascii=False, indent=None if json_output else 2))
        if (
            document["slots_played"] < document["slots_expected"]
            or document["duplicates"]
            or not document["scheduled_statistics"]["report_equals_ground_truth"]
        ):
            raise typer.Exit(1)
        return
    with Progress(
        TextColumn("Đang chờ báo cáo phát"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=json_output,
    ) as bar:
        task = bar.add_task("reports", total=None)
        try:
            result = run_demo(
                fleet,
                offline_fraction=offline_fraction,
                seed=seed,
                keep=keep,
                timeout_s=timeout,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except DemoError as exc:
            err.print(f"[bold red]Chạy thử thất bại:[/] {exc}")
            raise typer.Exit(1) from None
    for line in result.renamed:
        err.print(f"[yellow]Cảnh báo:[/] {line}")
    if json_output:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        table = Table(title="Kết quả phát bản tin theo xã")
        table.add_column("Xã / thị trấn")
        table.add_column("Số cụm loa", justify="right")
        table.add_column("Đã phát", justify="right")
        table.add_column("Chưa phát", justify="right")
        table.add_column("Mất kết nối", justify="right")
        for row in result.communes:
            table.add_row(
                row["name"],
                str(row["clusters"]),
                str(row["played"]),
                str(row["clusters"] - row["played"]),
                str(row["offline"]),
            )
        played = sum(r["played"] for r in result.communes)
        table.add_row(
            "[bold]Tổng cộng[/]", str(result.clusters), str(played), str(result.clusters - played), str(result.offline)
        )
        out = Console()
        out.print(table)
        out.print(
            f"{len(result.communes)} xã, {result.clusters} cụm loa, {played} đã phát; "
            f"{result.seconds:.1f} giây (máy chủ MQTT: {result.broker})."
        )
        if keep:
            out.print(f"Dữ liệu được giữ ở {keep}: bcast.sqlite3 và audio/.")
    if sum(r["played"] for r in result.communes) < result.clusters - result.offline:
        raise typer.Exit(1)
