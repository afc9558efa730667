"""Replace a file in one step (temp file in the same folder, fsync, rename): the broker never reads half a file.

Unlike the agent's `write_durably` (speaker_agent/durable_file.py), the temp file has a random name (the
CLI and a server may write the same file) and the file keeps its mode and group (the broker's group reads it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from speaker_agent.durable_file import fsync_directory  # the agent's own: it imports nothing of the server

DEFAULT_MODE = 0o640  # the broker's group may read it; nobody else (it holds password hashes)


def write_atomically(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write `text` to `path` through a renamed temp file; keeps an existing file's mode and group."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.stat() if path.exists() else None
    if mode is None:
        mode = (previous.st_mode & 0o777) if previous is not None else DEFAULT_MODE
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        if previous is not None:
            with contextlib.suppress(OSError):  # keep the broker's group when we may
                os.chown(temp_name, -1, previous.st_gid)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)  # make the rename itself durable
