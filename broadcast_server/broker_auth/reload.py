"""Tell the broker to re-read its password and ACL files: a configured command, else SIGHUP to its pid."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

RELOAD_TIMEOUT_S = 30.0


class BrokerReloadError(RuntimeError):
    """The broker could not be told to reload; the message says why."""


@dataclass(frozen=True)
class BrokerReloader:
    """`command` wins (e.g. ``systemctl reload mosquitto``); else `pid_file`; with neither, nothing to do."""

    command: str | None = None
    pid_file: Path | None = None

    @property
    def configured(self) -> bool:
        return bool(self.command) or self.pid_file is not None

    def reload(self) -> bool:
        """Ask the broker to reload; False when no way is configured. Raises BrokerReloadError on failure."""
        if self.command:
            self._run_command(self.command)
            return True
        if self.pid_file is not None:
            os.kill(self._read_pid(self.pid_file), signal.SIGHUP)
            return True
        return False

    @staticmethod
    def _run_command(command: str) -> None:
        try:
            done = subprocess.run(
                shlex.split(command), capture_output=True, text=True, timeout=RELOAD_TIMEOUT_S, check=False
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise BrokerReloadError(f"broker reload command {command!r} failed: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[:500]
            raise BrokerReloadError(f"broker reload command {command!r} exited with {done.returncode}: {detail}")

    @staticmethod
    def _read_pid(pid_file: Path) -> int:
        try:
            text = Path(pid_file).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BrokerReloadError(f"cannot read the broker pid file {pid_file}: {exc}") from None
        if not text.isdigit() or int(text) <= 1:
            raise BrokerReloadError(f"the broker pid file {pid_file} does not hold a process id: {text[:40]!r}")
        pid = int(text)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise BrokerReloadError(f"no broker runs with pid {pid} (from {pid_file})") from None
        except PermissionError:
            raise BrokerReloadError(f"not allowed to signal the broker (pid {pid} from {pid_file})") from None
        return pid
