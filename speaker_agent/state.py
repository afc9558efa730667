"""What the agent must remember across restarts: its connect counter, its commands and its volume.

A power cut loses memory but keeps the disk, so a command is written here before the broker is told it
arrived (paho acknowledges a QoS 1 message only after the callback returns): a command the broker
handed over is never lost, and one that was done is never done twice.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

REMEMBERED_COMMANDS = 512


class AgentState:
    """A small JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0
        self.volume: int | None = None
        self.done: deque[str] = deque(maxlen=REMEMBERED_COMMANDS)
        self.pending: dict[str, dict[str, Any]] = {}
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self.seq = int(document.get("seq", 0))
            self.done.extend(str(c) for c in document.get("done", []))
            pending = document.get("pending", {})
            if isinstance(pending, dict):
                self.pending = {str(k): v for k, v in pending.items() if isinstance(v, dict)}
            volume = document.get("volume")
            self.volume = int(volume) if isinstance(volume, int) and 0 <= volume <= 100 else None
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError):
            # A damaged state file must not brick the device. The counter restarts at 0: the server
            # takes every 'online' as live and drops only an 'offline' whose seq is below the last one.
            self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        self.save()
        return self.seq

    def is_known(self, command_id: str) -> bool:
        """Done already, or accepted and not finished yet: either way not to be started again."""
        return command_id in self.pending or command_id in self.done

    def is_done(self, command_id: str) -> bool:
        return command_id in self.done

    def accept(self, command: dict[str, Any]) -> None:
        """Remember a command before acting on it, so a restart resumes it."""
        self.pending[command["id"]] = command
        self.save()

    def mark_done(self, command_id: str) -> None:
        """The command has its outcome (already in the outbox): never act on it again."""
        self.pending.pop(command_id, None)
        if command_id not in self.done:
            self.done.append(command_id)
        self.save()

    def set_volume(self, volume: int) -> None:
        self.volume = volume
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        document = {"seq": self.seq, "done": list(self.done), "pending": self.pending, "volume": self.volume}
        tmp.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)
