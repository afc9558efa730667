"""What /proc says about a process: resident memory and CPU seconds used (Linux only, as the benchmarks are)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class NoSuchProcess(RuntimeError):
    """The process is gone, or /proc does not show the field asked for."""


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory in KiB (VmRSS), or another /proc/<pid>/status field such as the peak, VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise NoSuchProcess(f"no {field} for process {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)
