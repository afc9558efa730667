"""Run ffmpeg/ffprobe with argument lists (never a shell) and turn failures into `ToolError`."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from audio.errors import ToolError

# Long enough for an hour of input decoded several times on a small server.
DEFAULT_TIMEOUT_S = 900.0


def run_tool(
    args: Sequence[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    check: bool = True,
    on_progress: Callable[[float], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command and return its completed process.

    With `on_progress`, the command must write ffmpeg's `-progress pipe:1` report to stdout: each
    `out_time_us` is passed on, in seconds, while the command runs.
    Raises `ToolError` if the binary is missing or times out, and, when `check` is true, if it fails.
    """
    if on_progress is not None:
        proc = _run_streaming(args, timeout_s=timeout_s, on_progress=on_progress)
        if check and proc.returncode != 0:
            raise ToolError(f"{args[0]} failed (exit {proc.returncode}): {stderr_tail(proc.stderr)}")
        return proc
    try:
        proc = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{args[0]} is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{args[0]} did not finish within {timeout_s:.0f} s") from exc
    if check and proc.returncode != 0:
        raise ToolError(f"{args[0]} failed (exit {proc.returncode}): {stderr_tail(proc.stderr)}")
    return proc


def _run_streaming(
    args: Sequence[str], *, timeout_s: float, on_progress: Callable[[float], None]
) -> subprocess.CompletedProcess[str]:
    """Run a command, reading its stdout line by line; stderr goes to a temporary file (no pipe deadlock)."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(args),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise ToolError(f"{args[0]} is not installed or not on PATH") from exc
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, _kill)
        timer.start()
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("out_time_us="):
                    value = line.split("=", 1)[1].strip()
                    if value.lstrip("-").isdigit():
                        on_progress(max(0.0, int(value) / 1_000_000))
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        if timed_out.is_set():
            raise ToolError(f"{args[0]} did not finish within {timeout_s:.0f} s")
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return subprocess.CompletedProcess(list(args), returncode, "".join(lines), stderr)


def media_arg(path: Path) -> str:
    """Spell a local path for ffmpeg so that no name is read as an option or a protocol (`http:`, `concat:`)."""
    return "file:" + str(Path(path).resolve())


def progress_seconds(progress: str) -> float:
    """Read the last `out_time_us` from ffmpeg's `-progress` output, in seconds (0 if none)."""
    values = [line.split("=", 1)[1] for line in progress.splitlines() if line.startswith("out_time_us=")]
    for value in reversed(values):
        if value.strip().lstrip("-").isdigit():
            return max(0.0, int(value) / 1_000_000)
    return 0.0


def stderr_tail(stderr: str, lines: int = 5) -> str:
    """Return the last non-empty lines of a tool's stderr, joined on one line."""
    kept = [line.strip() for line in stderr.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no error output"
