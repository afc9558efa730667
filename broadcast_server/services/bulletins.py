"""Bulletins: Vietnamese text turned into broadcast-ready speech, stored as an audio asset, then approved.

Approval follows Thông tư 39: a commune drafts and submits, the district approves or returns it with a
comment; a returned bulletin is edited and submitted again. Emergency bulletins made by a role allowed
``Action.EMERGENCY`` are approved at once, and the audit log says so ("bulletin.emergency_skip_queue").
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session

from broadcast_server.accounts.principal import Action, Principal, ensure_can
from broadcast_server.accounts.scope import OutOfScope, unit_in_scope, unit_label
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.domain.reading import rate_problem
from broadcast_server.models import AdminUnit, AudioAsset, Bulletin, BulletinKind, BulletinStatus, Priority

if TYPE_CHECKING:
    from audio.render import RenderResult


class BulletinError(ValueError):
    """A bulletin request that cannot be honoured; the message says why."""


class BulletinNotFound(BulletinError):
    """No bulletin has that id."""


class BulletinForbidden(OutOfScope):
    """The bulletin belongs to a unit outside the caller's scope (the API answers 403)."""


class BulletinStateError(BulletinError):
    """The bulletin is not in a status that allows this step (e.g. approving a draft never submitted)."""


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # an edit that leaves the bulletin's reading speed as it was


def _check_rate(rate_wpm: int | None) -> None:
    problem = rate_problem(rate_wpm)
    if problem is not None:
        raise BulletinError(problem)


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
    rate_wpm: int | None = None,
    target_lufs: float = -16.0,
    principal: Principal | None = None,
    owner_unit_id: int | None = None,
    ip: str | None = None,
) -> Bulletin:
    """Synthesise the text (espeak-ng by default), loudness-normalise it and store a draft bulletin.

    `voice` is one of the TTS engine's voices, `rate_wpm` its reading speed in words a minute (None: the
    engine's own); both are kept on the bulletin. With a principal the bulletin belongs to `owner_unit_id`
    (default: the principal's scope unit), which must lie in its scope. Without one (demos, tests) it is
    the system's, owned by `owner_unit_id`.
    """
    if priority not in {p.value for p in Priority}:
        raise BulletinError(f"unknown priority {priority!r}")
    if not text.strip():
        raise BulletinError("text is empty")
    _check_rate(rate_wpm)
    owner_unit_id = check_new_owner(session, principal, owner_unit_id)
    asset = _speak(session, audio_dir, text, voice=voice, rate_wpm=rate_wpm, target_lufs=target_lufs)
    bulletin = Bulletin(
        title=title,
        text=text,
        voice=voice,
        rate_wpm=rate_wpm,
        kind=BulletinKind.TEXT.value,
        category=category,
        priority=priority,
        status=BulletinStatus.DRAFT.value,
        audio_asset_id=asset.id,
        owner_unit_id=owner_unit_id,
        created_by=principal.user_id if principal else None,
    )
    return add_new_bulletin(session, bulletin, principal, ip=ip)


def store_rendered(session: Session, audio_dir: Path, result: RenderResult) -> AudioAsset:
    """Store what audio.render made (speech or a recording, ready for broadcast) as an asset, once per content."""
    return store_asset(
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


def tts_voices() -> tuple[str, dict[str, str]]:
    """The configured TTS engine's name and its voices (id -> label shown to people); none if it is unknown."""
    from audio.tts.engine import TtsError
    from audio.tts.registry import configured_engine, get_engine

    try:
        engine = get_engine()
    except TtsError:
        return configured_engine(), {}
    return engine.name, dict(engine.voices())


def _speak(
    session: Session, audio_dir: Path, text: str, *, voice: str, rate_wpm: int | None, target_lufs: float
) -> AudioAsset:
    from audio.errors import LoudnessNotReached, SilentAudio, TooLarge, TooLong
    from audio.speech import text_to_broadcast_audio
    from audio.tts.engine import TtsError

    try:
        result = text_to_broadcast_audio(text, Path(audio_dir), voice=voice, rate_wpm=rate_wpm, target_lufs=target_lufs)
    except TtsError as exc:
        raise BulletinError(f"speech synthesis failed: {exc}") from exc
    # The text itself: "0" speaks for under 0.4 s, unmeasurable; under a second of speech may not reach
    # the loudness target either (schemathesis found one that missed it by 12 LU, a 500).
    except (SilentAudio, TooLong, TooLarge, LoudnessNotReached) as exc:
        raise BulletinError(f"the text does not make broadcastable speech: {exc}") from exc
    return store_rendered(session, audio_dir, result)


def check_new_owner(session: Session, principal: Principal | None, owner_unit_id: int | None) -> int | None:
    """The unit a new bulletin belongs to (default: the principal's own), checked before any audio is made."""
    if owner_unit_id is not None and session.get(AdminUnit, owner_unit_id) is None:
        # An unscoped administrator passes the scope check for any number; the foreign key would fail (a 500).
        raise BulletinError(f"unit {owner_unit_id} does not exist")
    if principal is None:
        return owner_unit_id
    ensure_can(principal, Action.DRAFT_BULLETIN)
    if owner_unit_id is None:
        owner_unit_id = principal.scope_unit_id
    if not unit_in_scope(session, principal, owner_unit_id):
        raise BulletinForbidden(f"unit {owner_unit_id} ({unit_label(session, owner_unit_id)}) is outside your scope")
    return owner_unit_id


def add_new_bulletin(
    session: Session, bulletin: Bulletin, principal: Principal | None, *, ip: str | None = None
) -> Bulletin:
    """Store a new draft (text or audio) and audit it; an emergency from a role allowed to skips the queue."""
    session.add(bulletin)
    session.flush()
    audit_step(session, bulletin, principal, "create", ip=ip, priority=bulletin.priority)
    if principal is not None and bulletin.priority == Priority.EMERGENCY and principal.can(Action.EMERGENCY):
        _review(bulletin, principal, BulletinStatus.APPROVED, None)
        session.add(bulletin)
        audit_step(session, bulletin, principal, "emergency_skip_queue", ip=ip)
    session.flush()
    return bulletin


def audit_step(
    session: Session, bulletin: Bulletin, principal: Principal | None, step: str, *, ip: str | None, **detail
) -> None:
    """One audit entry for a step of a bulletin, filed under its owner unit."""
    record(
        session,
        principal=principal,
        action=f"bulletin.{step}",
        object_type="bulletin",
        object_id=bulletin.id,
        detail={"title": bulletin.title, **detail},
        ip=ip,
        unit_id=bulletin.owner_unit_id,
    )


def _review(bulletin: Bulletin, principal: Principal | None, status: BulletinStatus, comment: str | None) -> None:
    bulletin.status = status.value
    bulletin.reviewed_by = principal.user_id if principal else None
    bulletin.reviewed_at = utcnow()
    bulletin.review_comment = comment


def get_bulletin(session: Session, bulletin_id: str, principal: Principal | None = None) -> Bulletin:
    """The bulletin if it exists and lies in the principal's scope (its owner unit); else an error."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise BulletinNotFound(f"bulletin {bulletin_id!r} does not exist")
    if principal is not None and not unit_in_scope(session, principal, bulletin.owner_unit_id):
        raise BulletinForbidden(f"bulletin {bulletin_id!r} belongs to a unit outside your scope")
    return bulletin


def bulletin_for_step(session: Session, bulletin_id: str, principal: Principal | None, action: Action) -> Bulletin:
    ensure_can(principal, action)
    return get_bulletin(session, bulletin_id, principal)


def edit_text_bulletin(
    session: Session,
    audio_dir: Path,
    bulletin_id: str,
    principal: Principal | None,
    *,
    title: str | None = None,
    text: str | None = None,
    category: str | None = None,
    voice: str | None = None,
    rate_wpm: int | None | _Keep = KEEP,
    default_voice: str = "vi",
    target_lufs: float = -16.0,
    ip: str | None = None,
) -> Bulletin:
    """Change a draft, returned or edited text bulletin; a returned one becomes edited.

    The speech is made again when the text, the voice or the reading speed changes. `voice` None and
    `rate_wpm` KEEP leave the bulletin's own (`default_voice` for a bulletin made before voices were kept).
    """
    bulletin = bulletin_for_step(session, bulletin_id, principal, Action.DRAFT_BULLETIN)
    editable = {BulletinStatus.DRAFT, BulletinStatus.RETURNED, BulletinStatus.EDITED}
    if bulletin.status not in editable:
        raise BulletinStateError(f"bulletin {bulletin_id!r} is {bulletin.status}; only drafts and returned ones change")
    if bulletin.kind == BulletinKind.RELAY:
        raise BulletinError(f"bulletin {bulletin_id!r} is a live relay; change its stream address or length instead")
    if bulletin.kind != BulletinKind.TEXT:
        raise BulletinError(f"bulletin {bulletin_id!r} is a recording; upload a new one instead")
    if title is not None:
        if not title.strip():
            raise BulletinError("title is empty")
        bulletin.title = title
    if category is not None:
        bulletin.category = category or None
    if text is not None and not text.strip():
        raise BulletinError("text is empty")
    new_text = text if text is not None else bulletin.text or ""
    old_voice = bulletin.voice or default_voice
    new_voice = voice or old_voice
    new_rate = bulletin.rate_wpm if rate_wpm is KEEP else rate_wpm
    _check_rate(new_rate)
    if (new_text, new_voice, new_rate) != (bulletin.text, old_voice, bulletin.rate_wpm):
        asset = _speak(session, audio_dir, new_text, voice=new_voice, rate_wpm=new_rate, target_lufs=target_lufs)
        bulletin.audio_asset_id = asset.id
        bulletin.text, bulletin.voice, bulletin.rate_wpm = new_text, new_voice, new_rate
    if bulletin.status == BulletinStatus.RETURNED:
        bulletin.status = BulletinStatus.EDITED.value
    session.add(bulletin)
    audit_step(session, bulletin, principal, "edit", ip=ip)
    return bulletin


def submit_bulletin(
    session: Session, bulletin_id: str, principal: Principal | None, *, ip: str | None = None
) -> Bulletin:
    """Put a draft (or an edited or returned bulletin) in the approval queue."""
    bulletin = bulletin_for_step(session, bulletin_id, principal, Action.DRAFT_BULLETIN)
    if bulletin.status not in {BulletinStatus.DRAFT, BulletinStatus.EDITED, BulletinStatus.RETURNED}:
        raise BulletinStateError(f"bulletin {bulletin_id!r} is {bulletin.status}; only drafts are submitted")
    bulletin.status = BulletinStatus.SUBMITTED.value
    session.add(bulletin)
    audit_step(session, bulletin, principal, "submit", ip=ip)
    return bulletin


def approve_bulletin(
    session: Session, bulletin_id: str, principal: Principal | None = None, *, ip: str | None = None
) -> Bulletin:
    """Approve a submitted bulletin. Without a principal (the system: demos, tests) any status is approved."""
    bulletin = bulletin_for_step(session, bulletin_id, principal, Action.APPROVE_BULLETIN)
    if principal is not None and bulletin.status != BulletinStatus.SUBMITTED:
        raise BulletinStateError(f"bulletin {bulletin_id!r} is {bulletin.status}; only submitted ones are approved")
    if bulletin.status == BulletinStatus.APPROVED:
        return bulletin
    _review(bulletin, principal, BulletinStatus.APPROVED, None)
    session.add(bulletin)
    audit_step(session, bulletin, principal, "approve", ip=ip)
    return bulletin


def return_bulletin(
    session: Session, bulletin_id: str, principal: Principal | None, comment: str, *, ip: str | None = None
) -> Bulletin:
    """Send a submitted bulletin back to its author with a comment saying what to change."""
    bulletin = bulletin_for_step(session, bulletin_id, principal, Action.APPROVE_BULLETIN)
    comment = comment.strip()
    if not comment:
        raise BulletinError("a returned bulletin needs a comment saying what to change")
    if bulletin.status != BulletinStatus.SUBMITTED:
        raise BulletinStateError(f"bulletin {bulletin_id!r} is {bulletin.status}; only submitted ones are returned")
    _review(bulletin, principal, BulletinStatus.RETURNED, comment[:5000])
    session.add(bulletin)
    audit_step(session, bulletin, principal, "return", ip=ip, comment=comment[:5000])
    return bulletin
