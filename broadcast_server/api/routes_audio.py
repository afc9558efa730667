"""/api/v1/audio/{sha256}: the files agents download (HTTP Range supported, so breaks resume).

An emergency makes every cluster of a district ask for the same new file at once. Assets never change
(they are named by their hash), so where a file lies is remembered after the first lookup and the route
answers from the event loop without a database round trip or a thread hop.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from broadcast_server.api.deps import RuntimeDep
from broadcast_server.db.session import session_scope
from broadcast_server.models import AudioAsset
from broadcast_server.runtime import Runtime

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


@router.get("/{sha256}", response_class=FileResponse)
async def download(sha256: str, runtime: RuntimeDep) -> FileResponse:
    """Stream one audio file."""
    if not _SHA256.match(sha256):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "audio id must be a lowercase SHA-256 hex digest")
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
