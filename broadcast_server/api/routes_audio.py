"""/api/v1/audio/{sha256}: the files agents download (HTTP Range supported, so breaks resume).

An emergency makes every cluster of a district ask for the same new file at once. Assets never change
(they are named by their hash), so the first request looks the asset up once (the requests that arrive
meanwhile wait for that one lookup instead of each queueing for a database connection) and keeps the file
in memory (up to `MEMORY_FILE_MAX` bytes a file, `MEMORY_TOTAL_MAX` in all): a whole-file download is then
answered from the event loop without a database round trip, a thread hop or a disk read. A request with a
Range header (an agent resuming a broken download) and a file too large to keep go to Starlette's
FileResponse, which reads the file from disk. Once a file is in memory, `AudioFromMemory` (a middleware)
answers a download with a valid token before FastAPI's routing and dependency solving, which cost several
times the answer itself; every other request goes on to the route.

Downloads are authorised: the URL the server puts in a command carries an expiring token (``exp``,
``tok``: HMAC-SHA256 of the file's hash and the expiry, checked without the database), else the caller
must be signed in (a console user listening to a file).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcast_server.api.deps import RuntimeDep
from broadcast_server.db.session import session_scope
from broadcast_server.models import AudioAsset
from broadcast_server.runtime import Runtime
from broadcast_server.signing.audio_tokens import AudioTokenRefused, check_audio_token
from broadcast_server.signing.keyring import load_or_create_keyring

router = APIRouter(prefix="/audio", tags=["audio"])
PATH_PREFIX = "/api/v1/audio/"  # where the app mounts this router
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav"}
_KNOWN_LIMIT = 10_000
MEMORY_FILE_MAX = 16 * 1024 * 1024
MEMORY_TOTAL_MAX = 256 * 1024 * 1024
SECRET_RECHECK_S = 1.0  # how long the in-memory answer keeps the token secret it read (see AudioFromMemory)
_CACHE_CONTROL = {"Cache-Control": "public, max-age=31536000, immutable"}


@dataclass(frozen=True)
class StoredAudio:
    """An asset's file, its media type, the headers of a whole-file answer, and its bytes when kept in memory."""

    path: Path
    media_type: str
    stat: os.stat_result
    headers: dict[str, str]
    body: bytes | None


def _locate(runtime: Runtime, sha256: str, room: int) -> StoredAudio | None:
    """The stored file of an asset (its bytes too if it fits in `room`), or None if there is no such asset."""
    with session_scope(runtime.engine) as session:
        asset = session.get(AudioAsset, sha256)
    if asset is None:
        return None
    root = Path(runtime.settings.audio_dir).resolve()
    path = (root / asset.storage_key).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    media_type = _MEDIA_TYPES.get(asset.format, "application/octet-stream")
    stat = path.stat()
    body = path.read_bytes() if stat.st_size <= min(room, MEMORY_FILE_MAX) else None
    if body is not None and len(body) != stat.st_size:  # written again in between: keep nothing in memory
        body = None
    # The headers FileResponse sends for this file (length, ETag, Last-Modified, Accept-Ranges, type).
    headers = dict(FileResponse(path, media_type=media_type, headers=_CACHE_CONTROL, stat_result=stat).headers)
    return StoredAudio(path, media_type, stat, headers, body)


def _stored(runtime: Runtime, sha256: str) -> StoredAudio | asyncio.Future[StoredAudio | None]:
    """The asset's StoredAudio, or the one lookup in progress for it (started here if none is)."""
    files = runtime.audio_files
    entry = files.get(sha256)
    if entry is not None:
        return entry
    in_memory = sum(len(f.body) for f in files.values() if isinstance(f, StoredAudio) and f.body is not None)
    lookup = asyncio.ensure_future(run_in_threadpool(_locate, runtime, sha256, MEMORY_TOTAL_MAX - in_memory))
    files[sha256] = lookup

    def settle(done: asyncio.Future[StoredAudio | None]) -> None:
        found = None if done.cancelled() or done.exception() is not None else done.result()
        if found is None or len(files) > _KNOWN_LIMIT:
            files.pop(sha256, None)  # unknown assets and failed lookups are looked up again next time
        else:
            files[sha256] = found

    lookup.add_done_callback(settle)
    return lookup


@cache
def _stored_secret(path: str) -> bytes:
    return load_or_create_keyring(Path(path)).audio_token_secret


def _audio_secret(runtime: Runtime) -> bytes:
    """The token secret: from the bus's signer (re-read when the key file changes), else the key file."""
    signer = getattr(runtime.bus, "signer", None)
    if signer is not None:
        return signer.keyring.audio_token_secret
    return _stored_secret(os.fspath(runtime.settings.signing_key_file))  # a str: hashing a Path costs more


class AudioFromMemory:
    """Middleware: a GET of a file kept in memory, with a valid token and no Range, answered at once.

    The answer is the route's own for such a request (same body and headers); anything else (no token or a
    refused one, a Range, a file not looked up yet or too large to keep) goes on to `download`, which gives
    the file or says why not."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._secret: tuple[bytes, float] | None = None  # (token secret, time.monotonic() it was read)

    def _token_secret(self) -> bytes:
        """The token secret, read again at most every SECRET_RECHECK_S: the key file's stat per download cost
        an emergency's ten thousand downloads a share of the server's core. A token the kept secret refuses
        goes on to the route, which reads the key file each time, so a rotated secret is never refused."""
        now = time.monotonic()
        if self._secret is None or now - self._secret[1] >= SECRET_RECHECK_S:
            self._secret = (_audio_secret(self.runtime), now)
        return self._secret[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(PATH_PREFIX):
            response = self._answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        sha256 = scope["path"][len(PATH_PREFIX) :]
        stored = self.runtime.audio_files.get(sha256)  # only well-formed hashes are ever stored
        if not isinstance(stored, StoredAudio) or stored.body is None:
            return None
        if any(name == b"range" for name, _ in scope["headers"]):
            return None
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        try:
            now = self.runtime.clock.now().timestamp()
            check_audio_token(self._token_secret(), sha256, query.get("exp"), query.get("tok"), now)
        except AudioTokenRefused:
            return None
        return Response(stored.body, headers=stored.headers)


async def _signed_in(request: Request, runtime: Runtime) -> bool:
    from broadcast_server.api.auth import optional_principal

    with session_scope(runtime.engine) as session:
        return await optional_principal(request, session) is not None


@router.get(
    "/{sha256}",
    response_class=FileResponse,
    responses={403: {"description": "No valid download token (exp, tok) and nobody signed in."}},
)
async def download(
    sha256: str, runtime: RuntimeDep, request: Request, exp: str | None = None, tok: str | None = None
) -> Response:
    """Send one audio file to an agent with the token from its command, or to a signed-in user."""
    if not _SHA256.match(sha256):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "audio id must be a lowercase SHA-256 hex digest")
    try:
        check_audio_token(_audio_secret(runtime), sha256, exp, tok, runtime.clock.now().timestamp())
    except AudioTokenRefused as exc:
        if not (request.headers.get("authorization") or request.cookies) or not await _signed_in(request, runtime):
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    stored = _stored(runtime, sha256)
    if not isinstance(stored, StoredAudio):
        stored = await asyncio.shield(stored)  # a client that goes away does not cancel the others' lookup
        if stored is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} does not exist")
    if stored.body is not None and "range" not in request.headers:
        return Response(stored.body, headers=stored.headers)
    if not stored.path.is_file():
        runtime.audio_files.pop(sha256, None)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} is missing from storage")
    return FileResponse(stored.path, media_type=stored.media_type, headers=_CACHE_CONTROL, stat_result=stored.stat)
