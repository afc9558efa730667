"""The Downloader over both of its HTTP clients: urllib (`bcast agent` on a device) and httpx (the simulator,
the tests). The same server faults give the same outcome: Range resume after a cut, start over when the
server ignores the Range, retries after a 5xx, no redirect followed, SHA-256 checked, a bounded failure."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from speaker_agent.cache import AudioCache
from speaker_agent.downloader import Downloader, DownloadError
from speaker_agent.http_client import UrllibClient

DATA = random.Random(9).randbytes(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


class Origin:
    """Serves DATA at /a.mp3 acting out `plan`, one step per request ("ok" once the plan is spent)."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.requests: list[dict[str, str]] = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                origin.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                step = origin.plan.pop(0) if origin.plan else "ok"
                wanted = self.headers.get("Range")
                start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted and step != "ignore-range" else 0
                if step.startswith("status-"):
                    return self._answer(int(step.removeprefix("status-")), b"no")
                if step == "redirect":
                    return self._answer(302, b"", {"Location": "/elsewhere.mp3"})
                body = DATA[start:]
                if step == "corrupt":
                    body = bytes(b ^ 0xFF for b in body)
                status = 206 if start else 200
                extra = {"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"} if start else {}
                if step == "cut":  # promises the whole body, sends a third, hangs up
                    self._head(status, len(body), extra)
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._answer(status, body, extra)

            def _head(self, status: int, length: int, extra: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()

            def _answer(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self._head(status, len(body), extra or {})
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/a.mp3"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def origin() -> Iterator[Origin]:
    made = Origin()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture(params=["urllib", "httpx"])
async def client(request):
    made = UrllibClient(timeout=10) if request.param == "urllib" else httpx.AsyncClient(timeout=10)
    async with made:
        yield made


def _downloader(client, tmp_path: Path) -> Downloader:
    cache = AudioCache(tmp_path / "cache", disk_free=lambda: 10**12)
    headers = {"User-Agent": "bcast-agent/test", "X-Bcast-Cluster": "c-1"}
    return Downloader(client, cache, attempts=3, base_delay_s=0.01, rng=random.Random(1), headers=headers)


async def test_download_verifies_and_caches(client, origin, tmp_path) -> None:
    downloader = _downloader(client, tmp_path)
    path = await downloader.fetch(origin.url, SHA, len(DATA))
    assert path.read_bytes() == DATA and path == downloader.cache.path_for(SHA)
    assert len(origin.requests) == 1 and "range" not in origin.requests[0]
    assert origin.requests[0]["user-agent"] == "bcast-agent/test" and origin.requests[0]["x-bcast-cluster"] == "c-1"
    assert await downloader.fetch(origin.url, SHA, len(DATA)) == path  # from the cache: no second request
    assert len(origin.requests) == 1


async def test_a_cut_download_resumes_with_range(client, origin, tmp_path) -> None:
    origin.plan = ["cut"]
    path = await _downloader(client, tmp_path).fetch(origin.url, SHA, len(DATA))
    assert path.read_bytes() == DATA
    assert [r.get("range") for r in origin.requests] == [None, f"bytes={len(DATA) // 3}-"]


async def test_a_server_ignoring_range_is_read_from_the_start(client, origin, tmp_path) -> None:
    origin.plan = ["cut", "ignore-range"]
    path = await _downloader(client, tmp_path).fetch(origin.url, SHA, len(DATA))
    assert path.read_bytes() == DATA and len(origin.requests) == 2 and origin.requests[1].get("range")


async def test_server_errors_are_retried(client, origin, tmp_path) -> None:
    origin.plan = ["status-503", "status-500"]
    path = await _downloader(client, tmp_path).fetch(origin.url, SHA, len(DATA))
    assert path.read_bytes() == DATA and len(origin.requests) == 3


@pytest.mark.parametrize("step, reason", [("status-404", "HTTP 404"), ("redirect", "HTTP 302"), ("corrupt", "SHA-256")])
async def test_failures_end_after_the_attempts_with_the_reason(client, origin, tmp_path, step, reason) -> None:
    origin.plan = [step] * 3
    downloader = _downloader(client, tmp_path)
    with pytest.raises(DownloadError, match=reason):
        await downloader.fetch(origin.url, SHA, len(DATA))
    assert [r["path"] for r in origin.requests] == ["/a.mp3"] * 3  # the redirect is never followed
    assert not downloader.cache.has(SHA)


async def test_no_server_is_a_download_error(client, tmp_path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/a.mp3"
    with pytest.raises(DownloadError, match="after 3 attempts"):
        await _downloader(client, tmp_path).fetch(url, SHA, len(DATA))


async def test_a_cancelled_download_leaves_a_partial_file_to_resume(origin, tmp_path) -> None:
    origin.plan = ["cut"]
    async with UrllibClient(timeout=10, chunk_size=4096) as device:
        downloader = _downloader(device, tmp_path)
        task = asyncio.create_task(downloader.fetch(origin.url, SHA, len(DATA)))
        partial = downloader.cache.partial_path(SHA)
        while not (partial.exists() and partial.stat().st_size):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        have = partial.stat().st_size
        assert 0 < have < len(DATA)
        path = await downloader.fetch(origin.url, SHA, len(DATA))
    assert path.read_bytes() == DATA and origin.requests[-1]["range"] == f"bytes={have}-"


def test_a_download_cancelled_on_a_stalled_link_lets_the_agent_exit_at_once() -> None:
    """asyncio.run waits for its executor's threads: a read blocked on a silent server must end with the cancel,
    not after the client's timeout. Each chunk is what has arrived (1,000 bytes here), not a full 64 KB."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []

    def serve() -> None:
        connection, _ = server.accept()
        held.append(connection)
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + bytes(1000))  # then silence

    threading.Thread(target=serve, daemon=True).start()
    got: list[int] = []

    async def scenario() -> None:
        client = UrllibClient(timeout=30)

        async def download() -> None:
            async with client.stream("GET", f"http://127.0.0.1:{server.getsockname()[1]}/a.mp3") as response:
                async for chunk in response.aiter_bytes():
                    got.append(len(chunk))

        task = asyncio.create_task(download())
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the next read is blocked in its worker thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    try:
        asyncio.run(scenario())
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert got == [1000]
    assert time.monotonic() - started < 5


def _free_port() -> int:
    with socket.socket() as probe:  # bound, then released: nobody listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
