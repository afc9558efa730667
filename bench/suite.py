"""The benchmark suite behind `bcast bench`: which benchmarks, with what sizes, and one JSON document of figures.

`--quick` (CI, about two minutes on 2 cores) runs every benchmark small; the full suite is what
docs/benchmarks.md quotes. Every figure comes with the baseline measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BENCHMARKS = ("ingest", "fanout", "render", "reports", "agent")
FULL_SIZES = (202, 2_000, 10_000)
QUICK_SIZES = (202,)


class SuiteError(ValueError):
    """The options name something the suite cannot run; the message says what (in Vietnamese, for the CLI)."""


@dataclass(frozen=True)
class SuiteOptions:
    quick: bool = False
    only: tuple[str, ...] = BENCHMARKS
    sizes: tuple[int, ...] | None = None  # fan-out fleet sizes; None: by quick or full
    database: str = "sqlite"
    replicas: int = 1  # server processes in the ingest benchmark (a shared subscription splits the stream)

    def __post_init__(self) -> None:
        unknown = [name for name in self.only if name not in BENCHMARKS]
        if unknown:
            raise SuiteError(f"Không có bài đo {', '.join(unknown)}; chọn trong: {', '.join(BENCHMARKS)}.")
        if self.database not in ("sqlite", "postgres"):
            raise SuiteError(f"Cơ sở dữ liệu {self.database!r} không được hỗ trợ: sqlite hoặc postgres.")
        if self.sizes is not None and (not self.sizes or any(n < 1 for n in self.sizes)):
            raise SuiteError("--sizes cần các số cụm loa dương, ví dụ 202,2000,10000.")
        if self.replicas < 1:
            raise SuiteError("--replicas cần ít nhất 1 bản sao máy chủ.")
        if self.replicas > 1 and self.database != "postgres":
            raise SuiteError("Nhiều bản sao máy chủ cần PostgreSQL: thêm --database postgres.")

    @property
    def fleet_sizes(self) -> tuple[int, ...]:
        return self.sizes or (QUICK_SIZES if self.quick else FULL_SIZES)


def parse_sizes(text: str, fd_limit: int) -> tuple[int, ...]:
    """'202,2000,10000' -> (202, 2000, 10000); each fleet must fit in the process's file limit."""
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise SuiteError(f"--sizes {text!r}: cần các số nguyên cách nhau bằng dấu phẩy, ví dụ 202,2000.") from None
    if not sizes or any(n < 1 for n in sizes):
        raise SuiteError(f"--sizes {text!r}: cần ít nhất một số cụm loa dương.")
    # One socket per simulated cluster plus the HTTP connections and files of the process.
    ceiling = fd_limit - 2_000
    if any(n > ceiling for n in sizes):
        raise SuiteError(f"--sizes: tối đa {ceiling:,} cụm loa (giới hạn {fd_limit:,} tệp mở mỗi tiến trình).")
    return sizes


@dataclass
class Progress:
    """Where the suite is: the CLI shows `step` and advances a bar by benchmark."""

    on_note: Callable[[str], None] = lambda _: None
    on_done: Callable[[str], None] = lambda _: None
    seconds: dict[str, float] = field(default_factory=dict)


def _ingest(options: SuiteOptions, note: Callable[[str], None]) -> dict[str, Any]:
    from bench import ingest

    messages, clusters = (20_000, 1_000) if options.quick else (100_000, 2_000)
    rounds, round_s = (2, 2.0) if options.quick else (6, 8.0)
    return ingest.run(
        messages=messages,
        clusters=clusters,
        database=options.database,
        replicas=options.replicas,
        zero_loss_rounds=rounds,
        round_s=round_s,
        note=note,
    )


def _fanout(options: SuiteOptions, note: Callable[[str], None]) -> dict[str, Any]:
    from bench import fanout

    return fanout.run(sizes=options.fleet_sizes, database=options.database, note=note)


def _render(options: SuiteOptions, note: Callable[[str], None]) -> dict[str, Any]:
    from bench.audio_rtf import render_against_ffmpeg

    minutes = 0.5 if options.quick else 5.0
    note(f"render: bản tin {minutes:g} phút, audio.render so với ffmpeg")
    figures = render_against_ffmpeg(minutes=minutes, repeat=1)
    return {
        "render": figures,
        "render_rtf": figures["render_rtf"],
        "render_baseline_rtf": figures["bare_ffmpeg_rtf"],
        "render_rtf_ratio": figures["render_rtf_ratio"],
    }


def _reports(options: SuiteOptions, note: Callable[[str], None]) -> dict[str, Any]:
    from bench.reports_year import run

    clusters, days = (2_000, 60) if options.quick else (10_000, 365)
    note(f"reports: {days} ngày của {clusters:,} cụm loa ({options.database})")
    figures = run(options.database, clusters, days, 1)
    return {
        "reports": figures,
        "reports_quarter_s": figures["quarter_rollup_s"],
        "reports_quarter_raw_s": figures["quarter_raw_s"],
        "reports_ratio": figures["quarter_speedup"],
    }


def _agent(options: SuiteOptions, note: Callable[[str], None]) -> dict[str, Any]:
    from bench import agent_footprint

    if options.quick:
        return agent_footprint.run(rest_s=3, play_s=3, heartbeats=6, note=note)
    return agent_footprint.run(rest_s=30, play_s=20, heartbeats=60, note=note)


RUNNERS: dict[str, Callable[[SuiteOptions, Callable[[str], None]], dict[str, Any]]] = {
    "ingest": _ingest,
    "fanout": _fanout,
    "render": _render,
    "reports": _reports,
    "agent": _agent,
}


def run_suite(options: SuiteOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run the chosen benchmarks in order; figures at the top level, each benchmark's detail under `details`."""
    from bench.machine import load_average, machine

    progress = progress or Progress()
    document: dict[str, Any] = {
        "quick": options.quick,
        "benchmarks": [name for name in BENCHMARKS if name in options.only],
        "machine": machine(),
    }
    details: dict[str, Any] = {}
    for name in document["benchmarks"]:
        started = time.monotonic()
        figures = RUNNERS[name](options, progress.on_note)
        progress.seconds[name] = round(time.monotonic() - started, 1)
        # Headline figures are named after their benchmark (ingest_ratio, fanout_p99_s, ...); the rest is detail.
        document.update({k: v for k, v in figures.items() if k.startswith(name + "_")})
        details[name] = {k: v for k, v in figures.items() if not k.startswith(name + "_")}
        progress.on_done(name)
    document["details"] = details
    document["seconds"] = dict(progress.seconds)
    document["load_average_end"] = load_average()
    return document
