"""A benchmark's helper process: started with arguments, talks JSON lines on stdout, takes orders on stdin.

Benchmarks put load generators (publishers, simulated fleets) in processes of their own so that they do
not share the measured server's interpreter lock.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class ChildFailed(RuntimeError):
    """The helper process exited, or said nothing in time; the message carries the end of its stderr."""


class Child:
    """`python -m <module> <args>` from the repository root, stdout read line by line with a deadline."""

    def __init__(self, module: str, *args: str) -> None:
        self.module = module
        self.stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bcast-bench-{os.getpid()}-{id(self)}.err"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]

    def read_json(self, timeout_s: float) -> dict[str, Any]:
        """The next JSON line the child prints; ChildFailed if it exits or stays silent past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildFailed(f"{self.module}: no answer in {timeout_s:.0f} s; {self.stderr_tail()}")
            if self._selector.select(min(remaining, 0.5)):
                chunk = os.read(self.process.stdout.fileno(), 1 << 20)  # type: ignore[union-attr]
                if not chunk:
                    raise ChildFailed(f"{self.module} exited ({self.process.poll()}); {self.stderr_tail()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]

    def stderr_tail(self, chars: int = 1500) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-chars:]

    def close(self, timeout_s: float = 30.0) -> None:
        """Close its stdin (children exit on EOF), wait, kill it if it lingers."""
        try:
            self.process.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._selector.close()
        self.process.stdout.close()  # type: ignore[union-attr]
        self._stderr.close()
        self.stderr_path.unlink(missing_ok=True)


def emit(document: dict[str, Any]) -> None:
    """In a child: one JSON line to the parent."""
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
