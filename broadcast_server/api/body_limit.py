"""Refuse request bodies over the limit with an HTTPException, so the API and the console answer it their own way.

Starlette's own ``max_body_size`` answers a declared ``Content-Length`` over the limit itself, in plain
English text, outside every exception handler: a commune broadcaster uploading a too-large recording
saw "Content Too Large" instead of the console's Vietnamese page. This middleware sits inside the app's
middleware stack instead: the refusal is raised from ``receive`` while a route reads the body, and the
handlers turn it into the API's English JSON or the console's Vietnamese page.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Read at most `max_bytes` of any request body; a declared length over it is refused before any is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                refusal = f"request body of {declared} bytes exceeds the limit of {self.max_bytes} bytes"
                raise HTTPException(413, refusal)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"request body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
