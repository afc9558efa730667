"""Players: what turns a cached audio file into sound (or, in the simulator, into a log entry)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from speaker_agent.clock import Clock


@dataclass(frozen=True)
class PlayOutcome:
    started_at: datetime
    ended_at: datetime
    played_s: float
    completed: bool  # False when stopped or preempted before the end


class PlayerError(RuntimeError):
    """The player could not play (no device, amplifier fault, decoder error)."""


class Player(Protocol):
    async def play(self, path: Path, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        """Play the file to its end, or until the task is cancelled (then it re-raises).

        `label` names what plays (a broadcast id) for logs and the simulator's ground truth."""

    def set_volume(self, volume: int) -> None:
        """Output level 0..100 for what plays next."""


@dataclass
class PlayRecord:
    """One playback as the simulated speaker really did it: the simulator's ground truth."""

    cluster_id: str
    broadcast_id: str | None
    started_at: datetime
    played_s: float
    completed: bool
    sha256: str = ""  # of the bytes that really went to the speaker, to prove no bad file ever played
    file: str = ""
    volume: int = 0


@dataclass
class SimulatedPlayer:
    """Plays nothing aloud: waits the audio's duration divided by `speed`, and logs what it did.

    It stands for the hardware, so the simulator keeps one per cluster across agent restarts."""

    clock: Clock
    cluster_id: str
    speed: float = 1.0
    log: list[PlayRecord] = field(default_factory=list)
    amplifier_fault: bool = False
    volume: int = 80

    def set_volume(self, volume: int) -> None:
        self.volume = volume

    async def play(self, path: Path, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        if self.amplifier_fault:
            raise PlayerError("amplifier fault: no output current")
        try:
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise PlayerError(f"audio file unreadable: {path}: {exc}") from None
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await self.clock.sleep(duration_s / self.speed)
        except asyncio.CancelledError:
            played = min(duration_s, (loop.time() - t0) * self.speed)
            self.log.append(PlayRecord(self.cluster_id, label, started, played, False, sha256, path.name, self.volume))
            raise
        self.log.append(PlayRecord(self.cluster_id, label, started, duration_s, True, sha256, path.name, self.volume))
        return PlayOutcome(started, self.clock.now(), duration_s, True)


# Players on a real device, in order of preference, with the arguments that play a file once and exit.
_COMMANDS: dict[str, list[str]] = {
    "ffplay": ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"],
    "mpv": ["mpv", "--no-video", "--really-quiet"],
    "mpg123": ["mpg123", "-q"],
}


def _volume_arguments(program: str, volume: int) -> list[str]:
    """Each player's own way to set the output level (0..100)."""
    if program == "ffplay":
        return ["-volume", str(volume)]
    if program == "mpv":
        return [f"--volume={volume}"]
    if program == "mpg123":
        return ["-f", str(round(32768 * volume / 100))]  # mpg123 scales samples by f/32768
    return []


@dataclass
class CommandPlayer:
    """Plays through an installed command-line player (ffplay, mpv or mpg123); stopping kills it."""

    clock: Clock
    command: list[str]
    volume: int = 80

    def set_volume(self, volume: int) -> None:
        self.volume = volume

    @classmethod
    def detect(cls, clock: Clock) -> CommandPlayer:
        import shutil

        for name, command in _COMMANDS.items():
            if shutil.which(name):
                return cls(clock=clock, command=command)
        raise PlayerError(f"no audio player installed: install one of {', '.join(_COMMANDS)}")

    async def play(self, path: Path, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        process = await asyncio.create_subprocess_exec(
            *self.command,
            *_volume_arguments(Path(self.command[0]).name, self.volume),
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise PlayerError(
                f"{self.command[0]} exited with {process.returncode}: {stderr.decode(errors='replace')[-200:]}"
            )
        return PlayOutcome(started, self.clock.now(), loop.time() - t0, True)
