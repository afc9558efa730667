"""The machine a benchmark ran on, read from /proc and platform: what docs/benchmarks.md quotes next to figures."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
from pathlib import Path


def _version_line(command: list[str]) -> str | None:
    """The first line of a tool's output that names its version."""
    if shutil.which(command[0]) is None:
        return None
    done = subprocess.run(command, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).splitlines()
    return next((line.strip() for line in lines if "version" in line), None)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: figures are only as quiet as this)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, object]:
    """CPU model and count, memory, Python, OS, the tools the benchmarks use, the file limit, the load."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), None)
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return {
        "cpu_model": cpu or platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mosquitto": _version_line(["mosquitto_sub", "--help"]),
        "ffmpeg": _version_line(["ffmpeg", "-version"]),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "load_average": load_average(),
    }
