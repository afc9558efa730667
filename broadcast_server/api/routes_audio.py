"""/api/v1/audio/{sha256}: the files agents download (HTTP Range supported, so breaks resume).

An emergency makes every cluster of a district ask for the same new file at once. Assets never change
(they are named by their hash), so where a file lies is remembered after the first lookup and the route
answers from the event loop without a database round trip or a thread hop.

Downloads are authorised: the URL the server puts in a command carries an expiring token (``exp``,
``tok``: HMAC-SHA256 of the file's hash and the expiry, checked without the database), else the caller
must be signed in (a console user listening to a file).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from broadcast_server.api.deps import RuntimeDep
from broadcast_server.db.session import session_scope
from broadcast_server.models import AudioAsset
from broadcast_server.runtime import Runtime
from broadcast_server.signing.audio_tokens import AudioTokenRefused, check_audio_token
from broadcast_server.signing.keyring import load_or_create_keyring

router = APIRouter(prefix="/audio", tags=["audio"])
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav"}
_KNOWN_LIMIT = 10_000


def _locate(runtime: Runtime, sha256: str) -> tuple[Path, str] | None:
    """The stored file of an asset and its media type, or None if there is no such asset."""
    with session_scope(runtime.engine) as session:
        asset = session.get(AudioAsset, sha256)
    if asset is None:
        return None
    root = Path(runtime.settings.audio_dir).resolve()
    path = (root / asset.storage_key).resolve()
    if not path.is_relative_to(root):
        return None
    return path, _MEDIA_TYPES.get(asset.format, "application/octet-stream")


@cache
def _stored_secret(path: Path) -> bytes:
    return load_or_create_keyring(path).audio_token_secret


def _audio_secret(runtime: Runtime) -> bytes:
    """The token secret: from the bus's signer (re-read when the key file changes), else the key file."""
    signer = getattr(runtime.bus, "signer", None)
    if signer is not None:
        return signer.keyring.audio_token_secret
    return _stored_secret(Path(runtime.settings.signing_key_file))


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
) -> FileResponse:
    """Stream one audio file to an agent with the token from its command, or to a signed-in user."""
    if not _SHA256.match(sha256):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "audio id must be a lowercase SHA-256 hex digest")
    try:
        check_audio_token(_audio_secret(runtime), sha256, exp, tok, runtime.clock.now().timestamp())
    except AudioTokenRefused as exc:
        if not (request.headers.get("authorization") or request.cookies) or not await _signed_in(request, runtime):
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    known = runtime.audio_locations
    located = known.get(sha256)
    if located is None:
        located = await run_in_threadpool(_locate, runtime, sha256)
        if located is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} does not exist")
        if len(known) < _KNOWN_LIMIT:
            known[sha256] = located
    path, media_type = located
    if not path.is_file():
        known.pop(sha256, None)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} is missing from storage")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"})
