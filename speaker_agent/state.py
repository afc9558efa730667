"""What the agent must remember across restarts: its connect counter and the commands it has done."""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path

REMEMBERED_COMMANDS = 512


class AgentState:
    """A small JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0
        self.done: deque[str] = deque(maxlen=REMEMBERED_COMMANDS)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self.seq = int(document.get("seq", 0))
            self.done.extend(str(c) for c in document.get("done", []))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError):
            # A damaged state file must not brick the device. The counter restarts at 0: the server
            # takes every 'online' as live and drops only an 'offline' whose seq is below the last one.
            self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        self.save()
        return self.seq

    def is_done(self, command_id: str) -> bool:
        return command_id in self.done

    def mark_done(self, command_id: str) -> None:
        if command_id not in self.done:
            self.done.append(command_id)
            self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": self.seq, "done": list(self.done)}), encoding="utf-8")
        os.replace(tmp, self.path)
