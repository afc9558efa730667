"""Players: what turns a cached audio file or a live stream into sound (or, in the simulator, a log entry)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Collection
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


class StreamError(PlayerError):
    """A live stream could not be opened, or ended or dropped before its time was up.

    `played_s` is how many seconds of it played before that (0.0 when it never started)."""

    def __init__(self, message: str, played_s: float = 0.0) -> None:
        super().__init__(message)
        self.played_s = played_s


class Player(Protocol):
    async def play(
        self, path: Path, duration_s: float, *, label: str | None = None, start_s: float = 0.0
    ) -> PlayOutcome:
        """Play the file from `start_s` to its end, or until the task is cancelled (then it re-raises).

        `duration_s` is the whole file's; `start_s` > 0 resumes an item an emergency cut (on_interrupt:
        resume). `label` names what plays (a broadcast id) for logs and the simulator's ground truth.
        The outcome's `played_s` counts only what played this time."""

    async def play_stream(self, url: str, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        """Relay the live stream at `url` for `duration_s` seconds, then stop it (completed), or until the
        task is cancelled (then it re-raises). Raises StreamError if it cannot be opened or ends early."""

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
    sha256: str = ""  # of the bytes that really went to the speaker, to prove no bad file ever played; "" for a stream
    file: str = ""  # the cached file's name, or a relayed stream's URL
    volume: int = 0
    start_s: float = 0.0  # where in the file it began: > 0 when an interrupted item resumed


@dataclass
class SimulatedPlayer:
    """Plays nothing aloud: waits the audio's duration divided by `speed`, and logs what it did.

    It stands for the hardware, so the simulator keeps one per cluster across agent restarts. Live streams
    have fault knobs: `stream_down` (URLs that refuse every connection) and `stream_drops` (URL -> seconds of
    relay after which that stream drops once, then works again). Their defaults are shared, not per player:
    a simulated fleet holds ten thousand of these."""

    clock: Clock
    cluster_id: str
    speed: float = 1.0
    log: list[PlayRecord] = field(default_factory=list)
    amplifier_fault: bool = False
    volume: int = 80
    stream_down: Collection[str] = frozenset()
    stream_drops: dict[str, float] | None = None

    def set_volume(self, volume: int) -> None:
        self.volume = volume

    async def play(
        self, path: Path, duration_s: float, *, label: str | None = None, start_s: float = 0.0
    ) -> PlayOutcome:
        if self.amplifier_fault:
            raise PlayerError("amplifier fault: no output current")
        try:
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise PlayerError(f"audio file unreadable: {path}: {exc}") from None
        start_s = min(max(0.0, start_s), duration_s)
        length = duration_s - start_s
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def record(played: float, completed: bool) -> None:
            self.log.append(
                PlayRecord(self.cluster_id, label, started, played, completed, sha256, path.name, self.volume, start_s)
            )

        try:
            await self.clock.sleep(length / self.speed)
        except asyncio.CancelledError:
            record(min(length, (loop.time() - t0) * self.speed), False)
            raise
        record(length, True)
        return PlayOutcome(started, self.clock.now(), length, True)

    async def play_stream(self, url: str, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        if self.amplifier_fault:
            raise PlayerError("amplifier fault: no output current")
        if url in self.stream_down:
            raise StreamError(f"could not open the stream {url}: connection refused (simulated)")
        drops = self.stream_drops
        drop_at = drops.get(url) if drops else None
        dropping = drop_at is not None and drop_at < duration_s
        length = max(0.0, drop_at if dropping and drop_at is not None else duration_s)
        started = self.clock.now()

        def record(played: float, completed: bool) -> None:
            self.log.append(PlayRecord(self.cluster_id, label, started, played, completed, "", url, self.volume))

        try:
            await self.clock.sleep(length / self.speed)
        except asyncio.CancelledError:
            record(min(length, (self.clock.now() - started).total_seconds() * self.speed), False)
            raise
        if dropping and drops is not None:
            del drops[url]  # it drops once: the next connection works
            record(length, False)
            raise StreamError(f"the stream {url} dropped after {length:.1f} s (simulated)", played_s=length)
        record(length, True)
        return PlayOutcome(started, self.clock.now(), length, True)


# Players on a real device, in order of preference, with the arguments that play a file once and exit.
# The same arguments relay a stream: ffplay's -autoexit makes a server-side end of stream exit (a drop).
_COMMANDS: dict[str, list[str]] = {
    "ffplay": ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"],
    "mpv": ["mpv", "--no-video", "--really-quiet"],
    "mpg123": ["mpg123", "-q"],
}


def _start_arguments(program: str, path: Path, start_s: float) -> list[str]:
    """Each player's own way to begin `start_s` seconds into the file (resuming an interrupted item)."""
    if start_s <= 0:
        return []
    if program == "ffplay":
        return ["-ss", f"{start_s:.3f}"]
    if program == "mpv":
        return [f"--start={start_s:.3f}"]
    if program == "mpg123":  # mpg123 skips whole MPEG frames, not seconds
        rate, samples = mp3_frame_format(path)
        return ["-k", str(int(start_s * rate / samples))]
    return []


_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def mp3_frame_format(path: Path) -> tuple[int, int]:
    """(sample rate, samples per frame) from the first MPEG audio frame header, after any ID3v2 tag."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    offset = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        offset = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F))
    for i in range(offset, len(head) - 3):
        b1, b2 = head[i + 1], head[i + 2]
        if head[i] != 0xFF or b1 & 0xE0 != 0xE0:
            continue
        version, layer, rate_index = (b1 >> 3) & 3, (b1 >> 1) & 3, (b2 >> 2) & 3
        if version == 1 or layer == 0 or rate_index == 3:
            continue  # reserved values: not a frame header
        samples = 384 if layer == 3 else 1152 if (layer == 2 or version == 3) else 576
        return _MP3_RATES[version][rate_index], samples
    raise PlayerError(f"{path}: no MPEG audio frame found")


STREAM_STALL_S = 15  # a stream that sends nothing this long counts as dropped, not as silence relayed


def _stream_arguments(program: str) -> list[str]:
    """Each player's own way to give up on a stalled stream instead of relaying silence until the end."""
    if program == "ffplay":
        return ["-rw_timeout", str(STREAM_STALL_S * 1_000_000)]  # microseconds, any protocol
    if program == "mpv":
        return [f"--network-timeout={STREAM_STALL_S}"]
    return []  # mpg123's --timeout aborts at once in Debian 12's build (fd_set overflow): left out


def _never_opened(program: str, url: str, returncode: int | None, stderr: str) -> bool:
    """True when a player that exited says it could not open the stream at all (nothing played).

    ffplay exits 0 either way but names the input in its open error; mpv exits 2 for a file it could not
    play; mpg123 exits non-zero when it could not connect (and 0 at a server-side end of stream)."""
    if program == "ffplay":
        return any(line.startswith(f"{url}: ") for line in stderr.splitlines())
    if program == "mpv":
        return returncode == 2
    if program == "mpg123":
        return returncode != 0
    return False


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

    async def play(
        self, path: Path, duration_s: float, *, label: str | None = None, start_s: float = 0.0
    ) -> PlayOutcome:
        program = Path(self.command[0]).name
        start_arguments = _start_arguments(program, path, start_s)
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        process = await asyncio.create_subprocess_exec(
            *self.command,
            *_volume_arguments(program, self.volume),
            *start_arguments,
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

    async def play_stream(self, url: str, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        program = Path(self.command[0]).name
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                *_volume_arguments(program, self.volume),
                *_stream_arguments(program),
                url,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise PlayerError(f"cannot start {self.command[0]}: {exc}") from None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=max(0.0, duration_s))
        except TimeoutError:  # the relay's time is up: that is success
            await _kill(process)
            return PlayOutcome(started, self.clock.now(), loop.time() - t0, True)
        except asyncio.CancelledError:
            await _kill(process)
            raise
        ran = loop.time() - t0
        text = stderr.decode(errors="replace")
        tail = " ".join(text.replace(f"{url}: ", "")[-300:].split())[-200:]  # the URL is in our message already
        detail = tail or f"{program} exited with status {process.returncode}"
        if _never_opened(program, url, process.returncode, text):
            raise StreamError(f"{program} could not open the stream {url}: {detail}")
        raise StreamError(f"the stream {url} ended after {ran:.1f} s of {duration_s:.0f} s: {detail}", played_s=ran)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop a player process now and reap it."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
