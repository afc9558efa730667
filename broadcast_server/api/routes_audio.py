"""/api/v1/audio/{sha256}: the files agents download (HTTP Range supported, so breaks resume)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from broadcast_server.api.deps import RuntimeDep
from broadcast_server.db.session import session_scope
from broadcast_server.models import AudioAsset

router = APIRouter(prefix="/audio", tags=["audio"])
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav"}


@router.get("/{sha256}", response_class=FileResponse)
def download(sha256: str, runtime: RuntimeDep) -> FileResponse:
    """Stream one audio file; the database connection is released before the bytes go out."""
    if not _SHA256.match(sha256):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "audio id must be a lowercase SHA-256 hex digest")
    with session_scope(runtime.engine) as session:
        asset = session.get(AudioAsset, sha256)
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} does not exist")
    root = Path(runtime.settings.audio_dir).resolve()
    path = (root / asset.storage_key).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"audio {sha256} is missing from storage")
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(asset.format, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
