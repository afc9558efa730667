"""`bcast bench`: the benchmark suite of bench/ (issue 9), with a Rich progress bar and a table or JSON.

The benchmarks live in the source tree's bench/ folder, not in the installed packages: the command finds
it next to this package (a git checkout, an editable install) and says so when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()

NAMES = "ingest, fanout, render, reports, agent"


def _load_suite():  # noqa: ANN202 - returns the bench.suite module
    import importlib
    import sys

    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "__init__.py").is_file():
        typer.echo(
            f"Không tìm thấy thư mục bench/ cạnh {root}: lệnh này chạy từ mã nguồn của bcast (git clone).", err=True
        )
        raise typer.Exit(2)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("bench.suite")


def _table(document: dict):  # noqa: ANN202 - a rich Table
    from rich.table import Table

    from broadcast_server.reports.numbers import vn_float, vn_int

    def number(value: object, digits: int = 2) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return vn_float(value, digits)
        if isinstance(value, int):
            return vn_int(value)
        return str(value)

    table = Table(title="Kết quả đo hiệu năng" + (" (rút gọn)" if document.get("quick") else ""))
    table.add_column("Chỉ số")
    table.add_column("bcast", justify="right")
    table.add_column("Mốc so sánh", justify="right")
    table.add_column("Tỷ lệ bcast ÷ mốc", justify="right")
    if "ingest_ratio" in document:
        table.add_row(
            "Lưu nhịp tim + báo cáo, dồn một lúc (tin/giây)",
            number(document["ingest_msgs_per_s"]),
            f"{number(document['ingest_baseline_msgs_per_s'])} (mosquitto_sub)",
            number(document["ingest_ratio"], 3),
        )
        table.add_row("Tin bị mất khi lưu dồn một lúc", number(document["ingest_lost"]), "", "")
        if document.get("ingest_zero_loss_msgs_per_s") is not None:
            table.add_row(
                "Lưu đều đặn không mất tin (tin/giây)",
                number(document["ingest_zero_loss_msgs_per_s"]),
                f"{number(document['ingest_baseline_msgs_per_s'])} (mosquitto_sub)",
                number(document["ingest_zero_loss_ratio"], 3),
            )
    for size in document.get("fanout_p99_s") or {}:
        table.add_row(
            f"Phát ngay → bắt đầu phát, {int(size):,} cụm: p50 / p99 / max (giây)",
            " / ".join(number(document[f"fanout_{p}_s"][size]) for p in ("p50", "p99", "max")),
            " / ".join(number(document[f"fanout_baseline_{p}_s"][size]) for p in ("p50", "p99", "max")) + " (chỉ MQTT)",
            number(document["fanout_p99_ratio"][size]),
        )
    if "render_rtf_ratio" in document:
        table.add_row(
            "Xử lý âm thanh: hệ số thời gian thực",
            number(document["render_rtf"], 4),
            f"{number(document['render_baseline_rtf'], 4)} (ffmpeg)",
            number(document["render_rtf_ratio"]),
        )
    if "reports_ratio" in document:
        table.add_row(
            "Báo cáo quý, một năm dữ liệu (giây)",
            number(document["reports_quarter_s"], 3),
            f"{number(document['reports_quarter_raw_s'], 3)} (bảng gốc)",
            number(1 / document["reports_ratio"], 4) if document["reports_ratio"] else "—",
        )
    if "agent_rss_mb" in document:
        table.add_row("Phần mềm cụm loa: bộ nhớ thường trú (MB)", number(document["agent_rss_mb"], 1), "< 40", "")
        table.add_row(
            "Phần mềm cụm loa: CPU khi nghỉ / khi phát (%)",
            f"{number(document['agent_cpu_rest_percent'])} / {number(document['agent_cpu_playing_percent'])}",
            "",
            "",
        )
        table.add_row(
            "Phần mềm cụm loa: lưu lượng nhịp tim (byte/ngày)",
            number(document["agent_bytes_per_day"]),
            "< 1.000.000",
            "",
        )
    m = document["machine"]

    def load(values: list[float]) -> str:
        return " / ".join(vn_float(v, 2) for v in values)

    table.caption = (
        f"Máy đo: {m['cpu_count']} nhân {m['cpu_model']}, {vn_float(m['memory_gib'])} GiB, Python {m['python']}; "
        f"tải trung bình (1/5/15 phút) lúc bắt đầu {load(m['load_average'])}, "
        f"lúc kết thúc {load(document['load_average_end'])}"
    )
    return table


@app.command("bench")
def bench(
    quick: bool = typer.Option(False, "--quick", help="Bản rút gọn (khoảng 2 phút, dùng trong CI)."),
    json_output: bool = typer.Option(False, "--json", help="In một tài liệu JSON các số đo thay cho bảng."),
    only: list[str] | None = typer.Option(
        None, "--only", help=f"Chỉ chạy bài đo này ({NAMES}); lặp lại hoặc ngăn bằng dấu phẩy."
    ),
    sizes: str | None = typer.Option(
        None, "--sizes", help="Số cụm loa của bài đo phát ngay, ví dụ 202,2000,10000 (mặc định; --quick: 202)."
    ),
    database: str = typer.Option(
        "sqlite", "--database", help="Cơ sở dữ liệu cho bài đo lưu tin, phát ngay, báo cáo: sqlite hoặc postgres."
    ),
    replicas: int = typer.Option(
        1, "--replicas", help="Số bản sao máy chủ chia nhau việc lưu tin (nhiều hơn 1 cần --database postgres)."
    ),
) -> None:
    """Đo hiệu năng trên máy này, mỗi số đo so với một mốc chạy cùng lúc (mosquitto_sub, MQTT, ffmpeg...)."""
    import json
    import logging
    import resource

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    suite = _load_suite()
    err = Console(stderr=True)
    names = tuple(part.strip() for item in (only or []) for part in item.split(",") if part.strip())
    try:
        fleet_sizes = suite.parse_sizes(sizes, resource.getrlimit(resource.RLIMIT_NOFILE)[1]) if sizes else None
        options = suite.SuiteOptions(
            quick=quick, only=names or suite.BENCHMARKS, sizes=fleet_sizes, database=database, replicas=replicas
        )
    except suite.SuiteError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.ERROR)  # the server's own warnings (alerts, reconnects) are not figures
    selected = [name for name in suite.BENCHMARKS if name in options.only]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=json_output,
    ) as bar:
        task = bar.add_task("Đang chuẩn bị…", total=len(selected))
        progress = suite.Progress(
            on_note=lambda text: bar.update(task, description=text),
            on_done=lambda name: bar.advance(task),
        )
        try:
            document = suite.run_suite(options, progress)
        except Exception as exc:  # a benchmark that cannot run says why, in one line, and fails the command
            err.print(f"[red]Bài đo dừng giữa chừng: {type(exc).__name__}: {exc}[/red]")
            raise typer.Exit(1) from None
        bar.update(task, description="Xong")
    if json_output:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        Console().print(_table(document))
