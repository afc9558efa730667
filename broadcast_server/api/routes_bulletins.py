"""/api/v1/bulletins: create a text bulletin (speech is synthesised at once) and approve it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import BulletinCreate, BulletinOut
from broadcast_server.models import AudioAsset, Bulletin
from broadcast_server.services.bulletins import BulletinError, approve_bulletin, create_text_bulletin

router = APIRouter(prefix="/bulletins", tags=["bulletins"])


def _out(session, bulletin: Bulletin) -> BulletinOut:
    asset = session.get(AudioAsset, bulletin.audio_asset_id) if bulletin.audio_asset_id else None
    return BulletinOut(**bulletin.model_dump(), duration_s=asset.duration_s if asset else None)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BulletinOut)
def create(body: BulletinCreate, session: SessionDep, runtime: RuntimeDep) -> BulletinOut:
    try:
        bulletin = create_text_bulletin(
            session,
            runtime.settings.audio_dir,
            title=body.title,
            text=body.text,
            category=body.category,
            priority=body.priority.value,
            voice=body.voice,
            target_lufs=runtime.settings.target_lufs,
        )
    except BulletinError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _out(session, bulletin)


@router.get("/{bulletin_id}", response_model=BulletinOut)
def read(bulletin_id: str, session: SessionDep) -> BulletinOut:
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"bulletin {bulletin_id!r} does not exist")
    return _out(session, bulletin)


@router.post("/{bulletin_id}/approve", response_model=BulletinOut)
def approve(bulletin_id: str, session: SessionDep) -> BulletinOut:
    try:
        bulletin = approve_bulletin(session, bulletin_id)
    except BulletinError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _out(session, bulletin)
