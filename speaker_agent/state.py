"""What the agent must remember across restarts: its connect counter, its commands, its volume, whether
its amplifier is held off, and which broadcasts the server stopped.

A power cut loses memory but keeps the disk, so a command is written here before the broker is told it
arrived (paho acknowledges a QoS 1 message only after the callback returns): a command the broker
handed over is never lost, and one that was done is never done twice.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

from speaker_agent.durable_file import write_durably

log = logging.getLogger(__name__)

REMEMBERED_COMMANDS = 512
REPLAY_WINDOW = 1024  # signed commands' seqs remembered; an older seq than all of them is refused
REPLAY_EXPIRED_MARGIN_S = 3600.0  # a seq is forgotten this long after its command expired (clock steps back)
REMEMBERED_STOPS = 256  # stopped broadcasts kept until their stop expires; past this the soonest to expire go


class AgentState:
    """A small JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0
        self.volume: int | None = None
        self.amplifier_off = False  # held off by a technician until an 'amplifier on' command
        self.done: deque[str] = deque(maxlen=REMEMBERED_COMMANDS)
        self.pending: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, int] = {}  # plays done of a pending command that repeats
        # Replay window of signed commands: seq -> its expiry (epoch seconds); every seq <= floor is refused.
        self.seq_floor = 0
        self.seen_seqs: dict[int, float] = {}
        # Broadcasts the server stopped -> until when (epoch seconds): a play of one arriving later (a dispatch
        # still publishing when the stop went out) is dropped, whatever order the broker delivered them in.
        self.stopped_broadcasts: dict[str, float] = {}
        self.save_error: str | None = None  # why the last save failed (a full disk), None once one works
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self.seq = int(document.get("seq", 0))
            self.done.extend(str(c) for c in document.get("done", []))
            pending = document.get("pending", {})
            if isinstance(pending, dict):
                self.pending = {str(k): v for k, v in pending.items() if isinstance(v, dict)}
            progress = document.get("progress", {})
            if isinstance(progress, dict):
                self.progress = {
                    str(k): int(v) for k, v in progress.items() if isinstance(v, int) and k in self.pending
                }
            volume = document.get("volume")
            self.volume = int(volume) if isinstance(volume, int) and 0 <= volume <= 100 else None
            self.amplifier_off = document.get("amplifier_off") is True
            replay = document.get("replay") or {}
            self.seq_floor = int(replay.get("floor", 0))
            self.seen_seqs = {int(s): float(e) for s, e in replay.get("seen", [])}
            stopped = document.get("stopped_broadcasts") or {}
            if isinstance(stopped, dict):
                self.stopped_broadcasts = {str(b): float(u) for b, u in stopped.items()}
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

    def accept(self, command: dict[str, Any]) -> bool:
        """Remember a command before acting on it, so a restart resumes it; False if the disk refused it."""
        self.pending[command["id"]] = command
        if self.save():
            return True
        self.pending.pop(command["id"], None)
        return False

    def mark_done(self, command_id: str) -> None:
        """The command has its outcome (already in the outbox): never act on it again."""
        self.pending.pop(command_id, None)
        self.progress.pop(command_id, None)
        if command_id not in self.done:
            self.done.append(command_id)
        self.save()

    def set_progress(self, command_id: str, plays_done: int) -> None:
        """A repeating command played once more: after a power cut it goes on from there."""
        self.progress[command_id] = plays_done
        self.save()

    def seq_seen(self, seq: int) -> bool:
        """Whether a signed command with this seq was taken already, or is older than the replay window."""
        return seq <= self.seq_floor or seq in self.seen_seqs

    def record_seq(self, seq: int, expires_at: float, now: float) -> None:
        """Remember a signed command's seq (saved with the next change of this file, before its ack).

        Seqs of commands expired for a while are forgotten (expiry refuses those anyway); past
        REPLAY_WINDOW entries the lowest go and the floor rises to them."""
        self.seen_seqs[seq] = expires_at
        for old, expiry in list(self.seen_seqs.items()):
            if expiry < now - REPLAY_EXPIRED_MARGIN_S:
                del self.seen_seqs[old]
        while len(self.seen_seqs) > REPLAY_WINDOW:
            lowest = min(self.seen_seqs)
            del self.seen_seqs[lowest]
            self.seq_floor = max(self.seq_floor, lowest)

    def remember_stopped(self, broadcast_id: str, until: float, now: float) -> None:
        """Remember that the server stopped a broadcast, until its stop expires (then no play of it is valid)."""
        self.stopped_broadcasts[broadcast_id] = max(until, self.stopped_broadcasts.get(broadcast_id, until))
        for old, expiry in list(self.stopped_broadcasts.items()):
            if expiry < now:
                del self.stopped_broadcasts[old]
        while len(self.stopped_broadcasts) > REMEMBERED_STOPS:
            del self.stopped_broadcasts[min(self.stopped_broadcasts, key=self.stopped_broadcasts.__getitem__)]
        self.save()

    def was_stopped(self, broadcast_id: str, now: float) -> bool:
        """Whether the server stopped this broadcast and its stop is still in force."""
        return self.stopped_broadcasts.get(broadcast_id, 0.0) >= now

    def set_volume(self, volume: int) -> None:
        self.volume = volume
        self.save()

    def set_amplifier_off(self, off: bool) -> None:
        self.amplifier_off = off
        self.save()

    def save(self) -> bool:
        """Write the file atomically; False (and `save_error`) when the disk refuses, never an exception."""
        document = {
            "seq": self.seq,
            "done": list(self.done),
            "pending": self.pending,
            "progress": self.progress,
            "volume": self.volume,
            "amplifier_off": self.amplifier_off,
            "replay": {"floor": self.seq_floor, "seen": sorted(self.seen_seqs.items())},
            "stopped_broadcasts": self.stopped_broadcasts,
        }
        try:
            write_durably(self.path, json.dumps(document, ensure_ascii=False))
        except OSError as exc:  # a full or failing disk: memory stays right, the next save writes it all
            self.save_error = f"cannot write {self.path.name}: {exc}"
            log.warning("%s", self.save_error)
            return False
        self.save_error = None
        return True
