"""Receive a CAP alert: record it once, then air it, queue it for approval, stop what it cancels, or only
keep it, as `policy.decide` says. The caller commits; commands go out through the given publisher."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast_server.accounts.principal import Action as Permission
from broadcast_server.accounts.principal import Principal, ensure_can
from broadcast_server.accounts.scope import visible_cluster_ids
from broadcast_server.audit.log import record
from broadcast_server.cap.alert import Alert, Info, parse_alert
from broadcast_server.cap.area import clusters_in
from broadcast_server.cap.policy import Action, decide
from broadcast_server.cap.recording import RecordingSource, RecordingUnusable, recording_bytes
from broadcast_server.db.session import session_scope
from broadcast_server.models import Bulletin, BulletinStatus, CapAlert, Cluster, Priority
from broadcast_server.services.broadcast_stop import stop_broadcast
from broadcast_server.services.bulletins import approve_bulletin, create_text_bulletin, submit_bulletin
from broadcast_server.services.dispatch import CommandPublisher, Target, create_broadcast
from broadcast_server.services.recordings import RecordingRefused, create_audio_bulletin

if TYPE_CHECKING:
    from broadcast_server.settings import Settings

TITLE_PREFIX = "Cảnh báo"


@dataclass(frozen=True)
class CapOutcome:
    alert_id: str
    action: str
    reason: str
    duplicate: bool = False  # the same (sender, identifier) came before: nothing done again
    clusters: int = 0
    bulletin_id: str | None = None
    broadcast_id: str | None = None


@dataclass(frozen=True)
class SpeechSettings:
    audio_dir: Path
    voice: str
    target_lufs: float
    ttl_s: int  # broadcasts of alerts without an expiry, and stops
    recordings: RecordingSource = field(default_factory=RecordingSource)  # an alert's own recording

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechSettings:
        recordings = RecordingSource.from_setting(settings.cap_resource_hosts, max_bytes=settings.max_upload_bytes)
        return cls(settings.audio_dir, settings.tts_voice, settings.target_lufs, settings.command_ttl_s, recordings)


def _outcome(row: CapAlert, duplicate: bool = False) -> CapOutcome:
    return CapOutcome(row.id, row.action, row.reason, duplicate, row.clusters, row.bulletin_id, row.broadcast_id)


def _area_clusters(session: Session, principal: Principal | None, info: Info) -> list[str]:
    """The clusters inside the info's areas that lie in the principal's area, by id."""
    visible = visible_cluster_ids(session, principal) if principal is not None else None
    rows = session.exec(select(Cluster.id, Cluster.lat, Cluster.lon).order_by(Cluster.id)).all()
    return [c for c in clusters_in(info.areas, rows) if visible is None or c in visible]


def _stop_referenced(
    session: Session, publisher: CommandPublisher, principal: Principal | None, alert: Alert, ttl_s: int
) -> int:
    """Stop the broadcasts of the alerts this one updates or cancels; how many clusters were told."""
    told = 0
    for sender, identifier in alert.references:
        earlier = session.exec(
            select(CapAlert).where(CapAlert.sender == sender, CapAlert.identifier == identifier)
        ).first()
        if earlier is not None and earlier.broadcast_id is not None:
            told += stop_broadcast(session, publisher, principal, earlier.broadcast_id, ttl_s=ttl_s).told
    return told


def receive_cap(
    session: Session,
    publisher: CommandPublisher,
    principal: Principal | None,
    document: bytes,
    speech: SpeechSettings,
    *,
    now: datetime,
    ip: str | None = None,
) -> CapOutcome:
    """Handle one CAP document. A broadcast it creates is stored, not sent: the caller commits, then sends
    `outcome.broadcast_id` (send_broadcast). Raises CapError for a document that is not a usable CAP 1.2
    alert (nothing is stored then)."""
    ensure_can(principal, Permission.EMERGENCY)
    alert = parse_alert(document)
    known = session.exec(
        select(CapAlert).where(CapAlert.sender == alert.sender, CapAlert.identifier == alert.identifier)
    ).first()
    if known is not None:
        return _outcome(known, duplicate=True)
    decision = decide(alert, now)
    row = CapAlert(
        sender=alert.sender,
        identifier=alert.identifier,
        sent=alert.sent,
        status=alert.status,
        msg_type=alert.msg_type,
        received_at=now,
        action=decision.action.value,
        reason=decision.reason,
        document=document.decode("utf-8", "replace"),
    )
    info = alert.info_for("vi") if decision.action in (Action.AIR, Action.REVIEW) else None
    # Fetched before anything is written: no database lock is held while the network is waited on.
    recording = _recording_of(info, speech)
    if decision.action is Action.CANCEL or decision.replaces:
        row.clusters = _stop_referenced(session, publisher, principal, alert, speech.ttl_s)
    if info is not None:
        clusters = _area_clusters(session, principal, info)
        if not clusters:
            row.action, row.reason = Action.RECORD.value, "no cluster of yours lies inside its area"
        else:
            row.clusters = len(clusters)
            bulletin, note = _bulletin(
                session, principal, info, speech, recording, emergency=decision.action is Action.AIR, ip=ip
            )
            row.bulletin_id = bulletin.id
            row.reason = f"{row.reason}; {note}" if note else row.reason
            if decision.action is Action.AIR:
                expires = info.expires or now
                ttl_s = max(speech.ttl_s, int((expires - now).total_seconds()))
                broadcast, _ = create_broadcast(
                    session, bulletin.id, Target(cluster_ids=tuple(clusters)), ttl_s=ttl_s, now=now, principal=principal
                )
                row.broadcast_id = broadcast.id
    session.add(row)
    session.flush()
    record(
        session,
        principal=principal,
        action=f"cap.{row.action}",
        object_type="cap_alert",
        object_id=row.id,
        detail={"sender": alert.sender, "identifier": alert.identifier, "reason": row.reason, "clusters": row.clusters},
        ip=ip,
    )
    return _outcome(row)


def store_cap(
    engine: Engine,
    publisher: CommandPublisher,
    principal: Principal | None,
    document: bytes,
    speech: SpeechSettings,
    *,
    now: datetime,
    ip: str | None = None,
) -> CapOutcome:
    """`receive_cap` in a transaction of its own, committed. The same alert stored meanwhile by another
    request (an agency's retry, a feed and the API at once) makes the unique (sender, identifier) refuse
    this one: it is then answered as the duplicate it is. The caller sends the broadcast, if any."""
    try:
        with session_scope(engine) as session:
            return receive_cap(session, publisher, principal, document, speech, now=now, ip=ip)
    except IntegrityError:
        with session_scope(engine) as session:
            return receive_cap(session, publisher, principal, document, speech, now=now, ip=ip)


def _recording_of(info: Info | None, speech: SpeechSettings) -> tuple[bytes | None, str]:
    """The bytes of the info's recording, or None and why it is not used ("" when there is none)."""
    resource = info.recording if info is not None else None
    if resource is None:
        return None, ""
    try:
        return recording_bytes(resource, speech.recordings), ""
    except RecordingUnusable as exc:
        return None, f"its recording is not used ({exc}): the text is spoken"


def _bulletin(
    session: Session,
    principal: Principal | None,
    info: Info,
    speech: SpeechSettings,
    recording: tuple[bytes | None, str],
    *,
    emergency: bool,
    ip: str | None,
) -> tuple[Bulletin, str]:
    """The alert as a bulletin, approved at once to air or submitted for review, and a note on its audio.

    The agency's own recording when the alert carries a usable one, else its words through text to speech."""
    title = f"{TITLE_PREFIX}: {info.headline or info.event}"[:200]
    priority = (Priority.EMERGENCY if emergency else Priority.PRIORITY).value
    data, note = recording
    bulletin = None
    if data is not None and info.recording is not None and info.recording.audio_suffix is not None:
        try:
            bulletin = _recorded(session, principal, data, info.recording.audio_suffix, speech, title, ip=ip)
            bulletin.priority = priority
            session.add(bulletin)
            note = "its recording is aired"
        except RecordingRefused as exc:
            note = f"its recording is not used ({exc}): the text is spoken"
    if bulletin is None:
        bulletin = create_text_bulletin(
            session,
            speech.audio_dir,
            title=title,
            text=info.text,
            priority=priority,
            voice=speech.voice,
            target_lufs=speech.target_lufs,
            principal=principal,
            ip=ip,
        )
    if not emergency:
        submit_bulletin(session, bulletin.id, principal, ip=ip)
    elif bulletin.status != BulletinStatus.APPROVED:  # the system itself (no principal) skips the queue too
        approve_bulletin(session, bulletin.id, None, ip=ip)
    return bulletin, note


def _recorded(
    session: Session,
    principal: Principal | None,
    data: bytes,
    suffix: str,
    speech: SpeechSettings,
    title: str,
    *,
    ip: str | None,
) -> Bulletin:
    """A draft audio bulletin of a recording, rendered as an upload is (checks, loudness, MP3)."""
    with tempfile.TemporaryDirectory(prefix="bcast-cap-") as folder:
        upload = Path(folder) / f"recording{suffix}"
        upload.write_bytes(data)
        return create_audio_bulletin(
            session,
            speech.audio_dir,
            upload,
            filename=f"cap-recording{suffix}",
            title=title,
            principal=principal,
            target_lufs=speech.target_lufs,
            max_bytes=speech.recordings.max_bytes,
            ip=ip,
        )


def recent_alerts(session: Session, limit: int = 50) -> list[CapAlert]:
    return list(session.exec(select(CapAlert).order_by(col(CapAlert.received_at).desc()).limit(limit)).all())
