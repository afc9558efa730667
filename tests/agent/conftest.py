"""Fixtures for agent tests: a loopback HTTP server for audio and a command publisher on the real broker."""

from __future__ import annotations

import hashlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from speaker_agent.config import AgentConfig


@dataclass
class AudioServer:
    base_url: str
    root: Path

    def add(self, name: str, data: bytes) -> tuple[str, str, int]:
        """Serve `data` as `name`; return (url, sha256, size)."""
        (self.root / name).write_bytes(data)
        return f"{self.base_url}/{name}", hashlib.sha256(data).hexdigest(), len(data)


@pytest.fixture
def audio_server(tmp_path: Path) -> Iterator[AudioServer]:
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield AudioServer(f"http://127.0.0.1:{server.server_address[1]}", root)
    server.shutdown()
    server.server_close()


@pytest.fixture
def topic_root() -> str:
    """A root of its own per test, so tests sharing the machine's broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:12]}"


def unsigned_config(**options: Any) -> AgentConfig:
    """An agent's configuration for a test that sends it unsigned commands: without a trusted key an agent
    refuses every command unless `allow_unsigned_commands` (tests/agent/test_signed_commands_on_broker.py)."""
    return AgentConfig(allow_unsigned_commands=True, **options)


def flip_a_byte(path: Path) -> None:
    """Rot one byte in the middle of a file, keeping its size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
