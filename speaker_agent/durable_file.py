"""Files on the box's card that a power cut leaves whole: the old version or the new one, never half, never lost.

Written beside the target, flushed to the card (fsync), renamed over it, then the folder flushed so the
rename itself survives. Without the fsyncs a rename is atomic but not durable: after a power cut ext4
can come back with the new name and an empty file, or with neither. Villages lose power in storms, and
what these files hold (a command accepted before the broker was told, a report not yet acknowledged)
is exactly what must not vanish. The writes are small: a flush each costs under a millisecond on an
SSD, tens on a slow SD card, on the agent's loop, which is what the order of events needs (a command is
on the card before paho acknowledges it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_durably(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` (UTF-8) through `path`.tmp; raises OSError, leaving the old file whole.

    `mode` (e.g. 0o600 for credentials) is set on the temp file before a byte is written."""
    tmp = path.with_suffix(".tmp")
    data = text.encode("utf-8")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)  # never through a planted link
        fd = os.open(tmp, flags, 0o666 if mode is None else mode)
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # a temp file left by a crash keeps its old mode otherwise
            # os.write, not a text file object: a simulated fleet writes these tens of thousands of times
            # a minute, and the wrapper cost a third of each write (bench/fanout.py)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)


def replace_durably(source: Path, target: Path) -> None:
    """Move a file written elsewhere (e.g. a finished download) over `target`, flushed before and after."""
    with open(source, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(source, target)
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries (a rename, a new file). Some filesystems refuse it: the rename has happened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
