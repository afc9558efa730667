"""Bulletins: Vietnamese text turned into broadcast-ready speech, stored as an audio asset, then approved."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from broadcast_server.models import AudioAsset, Bulletin, BulletinKind, BulletinStatus, Priority


class BulletinError(ValueError):
    """A bulletin request that cannot be honoured; the message says why."""


def store_asset(
    session: Session,
    audio_dir: Path,
    path: Path,
    *,
    size_bytes: int,
    duration_s: float,
    loudness_lufs: float | None,
    true_peak_dbtp: float | None,
    sha256: str,
    fmt: str,
) -> AudioAsset:
    """Get or create the asset row of a rendered file that already lies under `audio_dir`."""
    existing = session.get(AudioAsset, sha256)
    if existing is not None:
        return existing
    asset = AudioAsset(
        id=sha256,
        size_bytes=size_bytes,
        duration_s=duration_s,
        loudness_lufs=loudness_lufs,
        true_peak_dbtp=true_peak_dbtp,
        format=fmt,
        storage_key=str(Path(path).resolve().relative_to(Path(audio_dir).resolve())),
    )
    session.add(asset)
    return asset


def create_text_bulletin(
    session: Session,
    audio_dir: Path,
    *,
    title: str,
    text: str,
    category: str | None = None,
    priority: str = Priority.NORMAL.value,
    voice: str = "vi",
    target_lufs: float = -16.0,
) -> Bulletin:
    """Synthesise the text (espeak-ng by default), loudness-normalise it and store a draft bulletin."""
    from audio.speech import text_to_broadcast_audio
    from audio.tts.engine import TtsError

    if priority not in {p.value for p in Priority}:
        raise BulletinError(f"unknown priority {priority!r}")
    if not text.strip():
        raise BulletinError("text is empty")
    try:
        result = text_to_broadcast_audio(text, Path(audio_dir), voice=voice, target_lufs=target_lufs)
    except TtsError as exc:
        raise BulletinError(f"speech synthesis failed: {exc}") from exc
    asset = store_asset(
        session,
        audio_dir,
        result.path,
        size_bytes=result.size_bytes,
        duration_s=result.duration_s,
        loudness_lufs=result.integrated_lufs,
        true_peak_dbtp=result.true_peak_dbtp,
        sha256=result.sha256,
        fmt=result.format,
    )
    bulletin = Bulletin(
        title=title,
        text=text,
        kind=BulletinKind.TEXT.value,
        category=category,
        priority=priority,
        status=BulletinStatus.DRAFT.value,
        audio_asset_id=asset.id,
    )
    session.add(bulletin)
    session.flush()
    return bulletin


def approve_bulletin(session: Session, bulletin_id: str) -> Bulletin:
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise BulletinError(f"bulletin {bulletin_id!r} does not exist")
    bulletin.status = BulletinStatus.APPROVED.value
    session.add(bulletin)
    return bulletin
