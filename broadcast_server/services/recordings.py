"""Recordings as bulletins: an uploaded file (a phone's m4a, mp3, wav, amr or ogg) made broadcast-ready.

The upload goes through the same renderer as every other audio (`audio.render`): its checks refuse what
is not audio, too large, too long or silent, and what it writes is loudness-normalised MP3 stored by hash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlmodel import Session

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.models import Bulletin, BulletinKind, BulletinStatus, Priority
from broadcast_server.services.bulletins import (
    BulletinError,
    BulletinForbidden,
    add_new_bulletin,
    check_new_owner,
    store_rendered,
)

# What phones record and people send; anything else is refused before ffmpeg looks at it.
RECORDING_SUFFIXES = (".m4a", ".mp3", ".wav", ".amr", ".ogg", ".oga", ".opus", ".aac", ".3gp")


class RecordingRefused(BulletinError):
    """The uploaded file cannot become broadcast audio; the message says why (English, from the renderer)."""


class UploadTooLarge(RecordingRefused):
    """The upload is larger than the limit (``Settings.max_upload_bytes``); the rest was not read."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the file exceeds the upload limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


class UploadEmpty(RecordingRefused):
    """The upload has no bytes at all."""


class UploadTypeRefused(RecordingRefused):
    """The file name does not end in a recording type we accept."""


def save_upload(source: BinaryIO, filename: str, folder: Path, max_bytes: int) -> Path:
    """Copy an uploaded stream to a file in `folder`, refusing it past `max_bytes` without reading the rest.

    Only a known suffix reaches the file name (no NUL, no odd bytes from the client's name)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in RECORDING_SUFFIXES:
        raise UploadTypeRefused(f"{filename!r}: not a recording type we accept ({', '.join(RECORDING_SUFFIXES)})")
    target = folder / f"upload{suffix}"
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            written += len(chunk)
            if written > max_bytes:
                raise UploadTooLarge(max_bytes)
            out.write(chunk)
    if written == 0:
        raise UploadEmpty(f"{filename!r} is empty")
    return target


def create_audio_bulletin(
    session: Session,
    audio_dir: Path,
    upload: Path,
    *,
    filename: str,
    title: str,
    category: str | None = None,
    principal: Principal | None = None,
    owner_unit_id: int | None = None,
    target_lufs: float = -16.0,
    max_bytes: int | None = None,
    ip: str | None = None,
) -> Bulletin:
    """Render `upload` (saved by the caller) to broadcast audio and store a draft audio bulletin."""
    from audio.errors import AudioError
    from audio.render import DEFAULT_MAX_BYTES, render

    if not title.strip():
        raise BulletinError("title is empty")
    if Path(filename).suffix.lower() not in RECORDING_SUFFIXES:
        raise RecordingRefused(f"{filename!r}: not a recording type we accept ({', '.join(RECORDING_SUFFIXES)})")
    if principal is not None and not principal.can(Action.DRAFT_BULLETIN):
        raise BulletinForbidden(f"role {principal.role.value!r} may not draft bulletins")
    owner_unit_id = check_new_owner(session, principal, owner_unit_id)  # exists, and in scope
    audio_dir = Path(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    fd, staging_name = tempfile.mkstemp(prefix=".upload-", suffix=".mp3", dir=audio_dir)
    os.close(fd)
    staging = Path(staging_name)
    try:
        result = render(upload, staging, target_lufs=target_lufs, max_bytes=max_bytes or DEFAULT_MAX_BYTES)
        final = audio_dir / f"{result.sha256}.mp3"
        staging.replace(final)
        result = dataclasses.replace(result, path=final)
    except AudioError as exc:  # told with the name the user gave, not the server's temporary path
        raise RecordingRefused(str(exc).replace(str(upload), Path(filename).name)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    asset = store_rendered(session, audio_dir, result)
    bulletin = Bulletin(
        title=title.strip(),
        kind=BulletinKind.AUDIO.value,
        category=category or None,
        priority=Priority.NORMAL.value,
        status=BulletinStatus.DRAFT.value,
        audio_asset_id=asset.id,
        owner_unit_id=owner_unit_id,
        created_by=principal.user_id if principal else None,
    )
    return add_new_bulletin(session, bulletin, principal, ip=ip)
