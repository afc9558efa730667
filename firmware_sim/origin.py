"""A small HTTP/1.1 audio server on loopback, in the simulator's own event loop: GET with Range, keep-alive.

The simulator serves the audio of the play commands it dispatches itself from here, and tests read
`requests` to see what the agents asked for (a resumed download sends `Range: bytes=N-`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from dataclasses import dataclass, field

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
MAX_HEAD = 16 * 1024
CHUNK = 64 * 1024


@dataclass(frozen=True)
class OriginRequest:
    cluster: str
    path: str
    range: str | None
    status: int


@dataclass
class AudioOrigin:
    """Serves `files` (name -> bytes) at http://127.0.0.1:<port>/audio/<name>."""

    host: str = "127.0.0.1"
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[OriginRequest] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = field(default=None, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    async def start(self) -> AudioOrigin:
        self._server = await asyncio.start_server(self._serve, self.host, 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # idle keep-alive connections: their handlers see EOF
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def add(self, name: str, data: bytes) -> tuple[str, str, int]:
        """Serve `data` as `name`; return (url, sha256, size)."""
        self.files[name] = data
        return f"http://{self.host}:{self.port}/audio/{name}", hashlib.sha256(data).hexdigest(), len(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                if len(head) > MAX_HEAD:
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
                await self._respond(writer, method, path, headers)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, method: str, path: str, headers: dict[str, str]) -> None:
        name = path.removeprefix("/audio/")
        data = self.files.get(name) if path.startswith("/audio/") else None
        wanted = headers.get("range")
        status, body, extra = 200, b"", {}
        if method not in ("GET", "HEAD"):
            status = 405
        elif data is None:
            status = 404
        elif wanted:
            match = _RANGE.match(wanted)
            start = int(match.group(1)) if match else -1
            end = int(match.group(2)) if match and match.group(2) else len(data) - 1
            if not match or start >= len(data) or end < start:
                status, extra = 416, {"Content-Range": f"bytes */{len(data)}"}
            else:
                end = min(end, len(data) - 1)
                status, body = 206, data[start : end + 1]
                extra = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        else:
            body = data
        self.requests.append(OriginRequest(headers.get("x-bcast-cluster", ""), path, wanted, status))
        reason = {200: "OK", 206: "Partial Content", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status, "Range Not Satisfiable"
        )
        head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Accept-Ranges: bytes"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if method == "GET":
            for start in range(0, len(body), CHUNK):
                writer.write(body[start : start + CHUNK])
                await writer.drain()
        await writer.drain()
