"""/api/v1/bulletins: create a text bulletin (speech is synthesised at once), upload a recording or make a
live relay (a stream address and a length), edit a text or a relay, and the approval steps.

Drafts go draft → submitted → approved, or submitted → returned (with a comment) → edited → submitted.
Everything is scoped to the bulletin's owner unit: another commune's bulletin answers 403.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from sqlmodel import select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.api.auth import PrincipalDep, client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import (
    BulletinCreate,
    BulletinEdit,
    BulletinOut,
    BulletinReturn,
    RelayCreate,
    RowId,
    VoiceOut,
    VoicesOut,
)
from broadcast_server.domain.reading import MAX_RATE_WPM, MIN_RATE_WPM
from broadcast_server.models import AudioAsset, Bulletin, BulletinKind, BulletinStatus
from broadcast_server.services.bulletins import (
    KEEP,
    BulletinError,
    BulletinNotFound,
    BulletinStateError,
    approve_bulletin,
    create_text_bulletin,
    edit_text_bulletin,
    get_bulletin,
    return_bulletin,
    submit_bulletin,
    tts_voices,
)
from broadcast_server.services.recordings import RECORDING_SUFFIXES, UploadTooLarge, create_audio_bulletin, save_upload
from broadcast_server.services.relays import create_relay_bulletin, edit_relay_bulletin

router = APIRouter(prefix="/bulletins", tags=["bulletins"])
Drafter = Annotated[Principal, Depends(require(Action.DRAFT_BULLETIN))]
Approver = Annotated[Principal, Depends(require(Action.APPROVE_BULLETIN))]


def _out(session, bulletin: Bulletin) -> BulletinOut:
    asset = session.get(AudioAsset, bulletin.audio_asset_id) if bulletin.audio_asset_id else None
    duration_s = asset.duration_s if asset else bulletin.relay_duration_s
    return BulletinOut(**bulletin.model_dump(), duration_s=duration_s)


def _http(exc: BulletinError) -> HTTPException:
    if isinstance(exc, BulletinNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, BulletinStateError):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.get("", response_model=list[BulletinOut])
def list_(
    session: SessionDep,
    principal: PrincipalDep,
    status_: Annotated[BulletinStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BulletinOut]:
    """Bulletins of the caller's scope, newest first; `status=submitted` is the approval queue."""
    query = select(Bulletin).order_by(Bulletin.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
    visible = visible_unit_ids(session, principal)
    if visible is not None:
        query = query.where(Bulletin.owner_unit_id.in_(sorted(visible)))  # type: ignore[union-attr]
    if status_ is not None:
        query = query.where(Bulletin.status == status_.value)
    return [_out(session, b) for b in session.exec(query)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BulletinOut)
def create(
    body: BulletinCreate, session: SessionDep, runtime: RuntimeDep, principal: Drafter, request: Request
) -> BulletinOut:
    """A draft of the caller's unit (or `owner_unit_id` in scope); an emergency from an approver is approved at once."""
    try:
        bulletin = create_text_bulletin(
            session,
            runtime.settings.audio_dir,
            title=body.title,
            text=body.text,
            category=body.category,
            priority=body.priority.value,
            voice=body.voice or runtime.settings.tts_voice,
            rate_wpm=body.rate_wpm,
            target_lufs=runtime.settings.target_lufs,
            principal=principal,
            owner_unit_id=body.owner_unit_id,
            ip=client_ip(request),
        )
    except BulletinError as exc:
        raise _http(exc) from None
    return _out(session, bulletin)


@router.post(
    "/recordings", status_code=status.HTTP_201_CREATED, response_model=BulletinOut, responses={413: {}, 422: {}}
)
def upload_recording(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Drafter,
    request: Request,
    recording: Annotated[UploadFile, File(description=f"The recording ({', '.join(RECORDING_SUFFIXES)}).")],
    title: Annotated[str, Form(min_length=1, max_length=300)],
    category: Annotated[str | None, Form(max_length=200, examples=["Chuyển đổi số"])] = None,
    owner_unit_id: Annotated[RowId | None, Form()] = None,
) -> BulletinOut:
    """A draft audio bulletin from an uploaded recording (a phone's m4a, amr...), rendered broadcast-ready.

    The renderer refuses what is not audio, too long or silent (422); past `BCAST_MAX_UPLOAD_BYTES`, 413."""
    with tempfile.TemporaryDirectory(prefix="bcast-upload-") as work:
        try:
            saved = save_upload(recording.file, recording.filename or "", Path(work), runtime.settings.max_upload_bytes)
            bulletin = create_audio_bulletin(
                session,
                runtime.settings.audio_dir,
                saved,
                filename=recording.filename or saved.name,
                title=title,
                category=(category or "").strip() or None,
                principal=principal,
                owner_unit_id=owner_unit_id,
                target_lufs=runtime.settings.target_lufs,
                max_bytes=runtime.settings.max_upload_bytes,
                ip=client_ip(request),
            )
        except UploadTooLarge as exc:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
        except BulletinError as exc:
            raise _http(exc) from None
    return _out(session, bulletin)


@router.post("/relays", status_code=status.HTTP_201_CREATED, response_model=BulletinOut)
def create_relay(body: RelayCreate, session: SessionDep, principal: Drafter, request: Request) -> BulletinOut:
    """A draft live relay (tiếp sóng): clusters play the stream for `duration_s` when it is broadcast.

    Nothing is fetched from the stream here; it is approved like any other bulletin."""
    try:
        bulletin = create_relay_bulletin(
            session,
            title=body.title,
            stream_url=body.stream_url,
            duration_s=body.duration_s,
            category=(body.category or "").strip() or None,
            priority=body.priority.value,
            principal=principal,
            owner_unit_id=body.owner_unit_id,
            ip=client_ip(request),
        )
    except BulletinError as exc:
        raise _http(exc) from None
    return _out(session, bulletin)


@router.get("/voices", response_model=VoicesOut)
def voices(runtime: RuntimeDep, principal: PrincipalDep) -> VoicesOut:
    """How a text may be read out: the TTS engine's voices (`voice`) and the reading speeds allowed (`rate_wpm`)."""
    engine, found = tts_voices()
    default = runtime.settings.tts_voice
    return VoicesOut(
        engine=engine,
        voices=[VoiceOut(id=v, label=label, default=v == default) for v, label in found.items()],
        min_rate_wpm=MIN_RATE_WPM,
        max_rate_wpm=MAX_RATE_WPM,
    )


@router.get("/{bulletin_id}", response_model=BulletinOut)
def read(bulletin_id: str, session: SessionDep, principal: PrincipalDep) -> BulletinOut:
    try:
        return _out(session, get_bulletin(session, bulletin_id, principal))
    except BulletinError as exc:
        raise _http(exc) from None


@router.patch("/{bulletin_id}", response_model=BulletinOut)
def edit(
    bulletin_id: str, body: BulletinEdit, session: SessionDep, runtime: RuntimeDep, principal: Drafter, request: Request
) -> BulletinOut:
    """Change a draft or a returned bulletin (a returned one becomes 'edited'; submit it again).

    A text takes title, text, category, voice and rate_wpm; a relay title, category, stream_url and duration_s."""
    try:
        if get_bulletin(session, bulletin_id, principal).kind == BulletinKind.RELAY:  # 404/403 before anything else
            wrong = sorted({"text", "voice", "rate_wpm"} & body.model_fields_set)
            if wrong:
                raise BulletinError(f"a live relay has no {', '.join(wrong)}")
            bulletin = edit_relay_bulletin(
                session,
                bulletin_id,
                principal,
                title=body.title,
                stream_url=body.stream_url,
                duration_s=body.duration_s,
                category=body.category,
                ip=client_ip(request),
            )
            return _out(session, bulletin)
        wrong = sorted({"stream_url", "duration_s"} & body.model_fields_set)
        if wrong:
            raise BulletinError(f"only a live relay has {', '.join(wrong)}")
        bulletin = edit_text_bulletin(
            session,
            runtime.settings.audio_dir,
            bulletin_id,
            principal,
            title=body.title,
            text=body.text,
            category=body.category,
            voice=body.voice,
            rate_wpm=body.rate_wpm if "rate_wpm" in body.model_fields_set else KEEP,
            default_voice=runtime.settings.tts_voice,
            target_lufs=runtime.settings.target_lufs,
            ip=client_ip(request),
        )
    except BulletinError as exc:
        raise _http(exc) from None
    return _out(session, bulletin)


@router.post("/{bulletin_id}/submit", response_model=BulletinOut)
def submit(bulletin_id: str, session: SessionDep, principal: Drafter, request: Request) -> BulletinOut:
    """Put the bulletin in the approval queue."""
    try:
        return _out(session, submit_bulletin(session, bulletin_id, principal, ip=client_ip(request)))
    except BulletinError as exc:
        raise _http(exc) from None


@router.post("/{bulletin_id}/approve", response_model=BulletinOut)
def approve(bulletin_id: str, session: SessionDep, principal: Approver, request: Request) -> BulletinOut:
    """Approve a submitted bulletin of the caller's scope."""
    try:
        return _out(session, approve_bulletin(session, bulletin_id, principal, ip=client_ip(request)))
    except BulletinError as exc:
        raise _http(exc) from None


@router.post("/{bulletin_id}/return", response_model=BulletinOut)
def return_(
    bulletin_id: str, body: BulletinReturn, session: SessionDep, principal: Approver, request: Request
) -> BulletinOut:
    """Send a submitted bulletin back to its author with a comment."""
    try:
        return _out(session, return_bulletin(session, bulletin_id, principal, body.comment, ip=client_ip(request)))
    except BulletinError as exc:
        raise _http(exc) from None
