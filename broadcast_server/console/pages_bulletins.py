"""Bản tin: the list, a new text bulletin with a spoken preview, a recording upload, one bulletin's page.

A live relay (tiếp sóng) is made and edited in `pages_relay.py`; its page is this one.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.api.schemas import RowId
from broadcast_server.console.access import ConsolePrincipal, FormProblem, PageForbidden, PageNotFound, allowed
from broadcast_server.console.areas import bulletin_for, check_targets, target_choices
from broadcast_server.console.bulletin_queries import bulletins_in_scope
from broadcast_server.console.play_now import play_now, start_from_form
from broadcast_server.console.reading_choice import (
    Reading,
    chosen_reading,
    reading_choices,
    reading_label,
    stored_reading,
)
from broadcast_server.console.templating import STATUS_LABELS_VI, page
from broadcast_server.domain.relay import MAX_RELAY_MINUTES, MIN_RELAY_MINUTES
from broadcast_server.models import AudioAsset, Broadcast, BulletinKind, BulletinStatus
from broadcast_server.services.bulletins import (
    KEEP,
    BulletinError,
    BulletinForbidden,
    create_text_bulletin,
    edit_text_bulletin,
    submit_bulletin,
)
from broadcast_server.services.recordings import (
    RECORDING_SUFFIXES,
    UploadEmpty,
    UploadTooLarge,
    UploadTypeRefused,
    create_audio_bulletin,
    save_upload,
)

router = APIRouter()
Drafter = Annotated[Principal, Depends(allowed(Action.DRAFT_BULLETIN))]
MAX_TEXT = 20_000
MAX_TITLE = 300
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
PREVIEW_FOLDER = "preview"
PREVIEW_KEEP_S = 24 * 3600
EDITABLE = frozenset({"draft", "returned", "edited"})
# A relay's length is typed in whole minutes (the API takes seconds).
RELAY_MINUTES = (MIN_RELAY_MINUTES, MAX_RELAY_MINUTES)  # the range of the forms' minutes inputs


def owner_choices(session, principal: Principal) -> list[tuple[int, str]]:
    """Units a new bulletin may belong to: the communes in scope (a commune broadcaster has one)."""
    return [(c.unit_id, c.name) for c in target_choices(session, principal)]


def chosen_owner(session, principal: Principal, owner_unit_id: int | None) -> int | None:
    """The unit a new bulletin's form names, if in scope (a 403 page otherwise); none named: the user's own."""
    if owner_unit_id is None:
        return principal.scope_unit_id
    check_targets(session, principal, [owner_unit_id])
    return owner_unit_id


def _editor_page(request, session, principal, *, status_code=200, reading: Reading | None = None, **values):
    defaults = {
        "title_value": "",
        "category": "",
        "text": "",
        "owner_unit_id": None,
        "spoken": None,
        "preview_sha": None,
        "error": None,
        "bulletin": None,
    }
    return page(
        request,
        "bulletin_new.html",
        status_code=status_code,
        title="Soạn bản tin",
        owners=owner_choices(session, principal),
        max_text=MAX_TEXT,
        **reading_choices(request.app.state.runtime.settings.tts_voice, reading),
        **{**defaults, **values},
    )


@router.get("/bulletins")
def bulletin_list(request: Request, session: SessionDep, principal: ConsolePrincipal, status: str = "") -> Response:
    statuses = [status] if status in STATUS_LABELS_VI or status == "edited" else None
    return page(
        request,
        "bulletins.html",
        title="Bản tin",
        bulletins=bulletins_in_scope(session, principal, statuses=statuses),
        status=status if statuses else "",
        statuses=STATUS_LABELS_VI,
    )


@router.get("/bulletins/new")
def new_bulletin_form(request: Request, session: SessionDep, principal: Drafter) -> Response:
    return _editor_page(request, session, principal)


@router.post("/bulletins/new")
def new_bulletin(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Drafter,
    title: Annotated[str, Form(max_length=MAX_TITLE)] = "",
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    category: Annotated[str, Form(max_length=200)] = "",
    owner_unit_id: Annotated[RowId | None, Form()] = None,
    voice: Annotated[str, Form(max_length=40)] = "",
    speed: Annotated[str, Form(max_length=10)] = "",
    action: Annotated[str, Form()] = "preview",
) -> Response:
    """'preview' shows the spoken form and its speech; 'save' keeps a draft; 'submit' also sends it for approval."""
    owner = chosen_owner(session, principal, owner_unit_id)
    values = {"title_value": title, "category": category, "text": text, "owner_unit_id": owner}
    try:
        reading = chosen_reading(voice, speed, runtime.settings.tts_voice)
    except FormProblem as exc:
        return _editor_page(request, session, principal, status_code=422, error=str(exc), **values)
    values["reading"] = reading
    if not text.strip():
        return _editor_page(request, session, principal, status_code=422, error="Hãy nhập nội dung bản tin.", **values)
    if action == "preview":
        return _editor_page(request, session, principal, **values, **_preview(runtime, text, reading))
    if not title.strip():
        return _editor_page(
            request, session, principal, status_code=422, error="Hãy đặt tiêu đề cho bản tin.", **values
        )
    ip = client_ip(request)
    try:
        bulletin = create_text_bulletin(
            session,
            runtime.settings.audio_dir,
            title=title.strip(),
            text=text,
            category=category.strip() or None,
            voice=reading.voice,
            rate_wpm=reading.rate_wpm,
            target_lufs=runtime.settings.target_lufs,
            principal=principal,
            owner_unit_id=owner,
            ip=ip,
        )
        if action == "submit":
            submit_bulletin(session, bulletin.id, principal, ip=ip)
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được soạn bản tin cho địa bàn này.") from exc
    except BulletinError as exc:
        return _editor_page(
            request, session, principal, status_code=422, error=f"Không tạo được giọng đọc: {exc}", **values
        )
    return RedirectResponse(f"/bulletins/{bulletin.id}?created=1", status_code=303)


def _preview(runtime, text: str, reading: Reading) -> dict:
    """The text as the voice will read it, and its speech rendered like a bulletin's (cached by content)."""
    from audio.errors import LoudnessNotReached, SilentAudio, TooLarge, TooLong
    from audio.speech import spoken_form, text_to_broadcast_audio
    from audio.tts.engine import TtsError

    try:
        spoken = spoken_form(text)
        result = text_to_broadcast_audio(
            text,
            Path(runtime.settings.audio_dir) / PREVIEW_FOLDER,
            voice=reading.voice,
            rate_wpm=reading.rate_wpm,
            target_lufs=runtime.settings.target_lufs,
        )
    # "0" speaks too briefly to measure; a very short speech may miss the loudness target.
    except (TtsError, SilentAudio, TooLong, TooLarge, LoudnessNotReached) as exc:
        return {"error": f"Không tạo được giọng đọc: {exc}"}
    _prune_previews(Path(runtime.settings.audio_dir) / PREVIEW_FOLDER, keep=result.sha256)
    return {"spoken": spoken, "preview_sha": result.sha256}


def _prune_previews(folder: Path, *, keep: str) -> None:
    """Previews are for listening before sending: those older than PREVIEW_KEEP_S go, so the folder stays small."""
    cutoff = time.time() - PREVIEW_KEEP_S
    for path in folder.glob("*.mp3"):
        with contextlib.suppress(OSError):
            if path.stem != keep and path.stat().st_mtime < cutoff:
                path.unlink()


@router.get("/bulletins/preview/{sha256}.mp3")
def preview_audio(sha256: str, runtime: RuntimeDep, principal: Drafter) -> Response:
    if not _SHA256.match(sha256):
        raise PageNotFound("Không có bản nghe thử này.")
    path = Path(runtime.settings.audio_dir) / PREVIEW_FOLDER / f"{sha256}.mp3"
    if not path.is_file():
        raise PageNotFound("Bản nghe thử đã hết hạn, hãy bấm “Xem trước” lần nữa.")
    return FileResponse(path, media_type="audio/mpeg")


def _upload_page(request, session, principal, *, status_code=200, **values):
    defaults = {"error": None, "title_value": "", "category": ""}
    return page(
        request,
        "bulletin_upload.html",
        status_code=status_code,
        title="Gửi tệp ghi âm",
        owners=owner_choices(session, principal),
        accept=",".join(("audio/*", *RECORDING_SUFFIXES)),
        **{**defaults, **values},
    )


@router.get("/bulletins/upload")
def upload_form(request: Request, session: SessionDep, principal: Drafter) -> Response:
    return _upload_page(request, session, principal)


def _save_upload(upload: UploadFile, folder: Path, max_bytes: int) -> Path:
    """Copy the upload to a file (`save_upload`), its refusals told in Vietnamese."""
    try:
        return save_upload(upload.file, upload.filename or "", folder, max_bytes)
    except UploadTypeRefused:
        raise FormProblem(f"Chỉ nhận tệp ghi âm ({', '.join(RECORDING_SUFFIXES)}).") from None
    except UploadTooLarge:
        raise FormProblem(f"Tệp lớn hơn {max_bytes / (1024 * 1024):g} MB, không nhận được.") from None
    except UploadEmpty:
        raise FormProblem("Tệp rỗng: hãy chọn lại tệp ghi âm.") from None


@router.post("/bulletins/upload")
def upload(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Drafter,
    recording: Annotated[UploadFile, File()],
    title: Annotated[str, Form(max_length=MAX_TITLE)] = "",
    category: Annotated[str, Form(max_length=200)] = "",
    owner_unit_id: Annotated[RowId | None, Form()] = None,
    action: Annotated[str, Form()] = "save",
) -> Response:
    owner = chosen_owner(session, principal, owner_unit_id)
    ip = client_ip(request)

    def again(error: str) -> Response:
        return _upload_page(
            request, session, principal, status_code=422, error=error, title_value=title, category=category
        )

    if not title.strip():
        return again("Hãy đặt tiêu đề cho bản tin.")
    with tempfile.TemporaryDirectory(prefix="bcast-upload-") as work:
        saved = _save_upload(recording, Path(work), runtime.settings.max_upload_bytes)
        try:
            bulletin = create_audio_bulletin(
                session,
                runtime.settings.audio_dir,
                saved,
                filename=recording.filename or saved.name,
                title=title,
                category=category.strip() or None,
                principal=principal,
                owner_unit_id=owner,
                target_lufs=runtime.settings.target_lufs,
                max_bytes=runtime.settings.max_upload_bytes,
                ip=ip,
            )
            if action == "submit":
                submit_bulletin(session, bulletin.id, principal, ip=ip)
        except BulletinForbidden as exc:
            raise PageForbidden("Bạn không được gửi bản tin cho địa bàn này.") from exc
        except BulletinError as exc:
            return again(f"Không dùng được tệp này: {exc}")
    return RedirectResponse(f"/bulletins/{bulletin.id}?created=1", status_code=303)


@router.get("/bulletins/{bulletin_id}")
def bulletin_page(
    request: Request, bulletin_id: str, session: SessionDep, principal: ConsolePrincipal, created: int = 0
) -> Response:
    bulletin = bulletin_for(session, principal, bulletin_id)
    return render_bulletin(request, session, principal, bulletin, flash="Đã lưu bản tin." if created else None)


def relay_minutes(duration_s: int | None) -> int:
    """A relay's length as the edit form shows it: whole minutes (one made through the API may have seconds)."""
    return max(RELAY_MINUTES[0], round((duration_s or 0) / 60))


def relay_form_values(bulletin) -> dict[str, str | int]:
    """What a relay's edit form holds before anything is typed: the stored title, category, address and length."""
    return {
        "title": bulletin.title,
        "category": bulletin.category or "",
        "stream_url": bulletin.stream_url or "",
        "minutes": relay_minutes(bulletin.relay_duration_s),
    }


def render_bulletin(
    request, session, principal, bulletin, *, status_code=200, edit=None, reading=None, relay_edit=None, **extra
):
    """One bulletin; `edit` (title, text) and `reading` refill a text's edit form with what was typed (a preview),
    `relay_edit` a relay's (title, category, stream_url, minutes) after a refusal."""
    asset = session.get(AudioAsset, bulletin.audio_asset_id) if bulletin.audio_asset_id else None
    from sqlmodel import select

    broadcasts = session.exec(
        select(Broadcast).where(Broadcast.bulletin_id == bulletin.id).order_by(Broadcast.created_at.desc())  # type: ignore[attr-defined]
    ).all()
    relay = bulletin.kind == BulletinKind.RELAY
    editable = bulletin.kind in {BulletinKind.TEXT, BulletinKind.RELAY} and bulletin.status in EDITABLE
    default_voice = request.app.state.runtime.settings.tts_voice
    stored = stored_reading(bulletin.voice, bulletin.rate_wpm, default_voice)
    return page(
        request,
        "bulletin.html",
        status_code=status_code,
        title=bulletin.title,
        bulletin=bulletin,
        asset=asset,
        broadcasts=broadcasts,
        choices=target_choices(session, principal),
        can_submit=principal.can(Action.DRAFT_BULLETIN) and bulletin.status in EDITABLE,
        can_edit=principal.can(Action.DRAFT_BULLETIN) and editable,
        edit_title=edit[0] if edit else bulletin.title,
        edit_text=edit[1] if edit else bulletin.text,
        editing=edit is not None or relay_edit is not None,
        relay_edit=(relay_edit or relay_form_values(bulletin)) if relay else None,
        relay_minutes_range=RELAY_MINUTES,
        # The form offers what was typed (a preview) or what is stored; the page's heading says what is stored.
        **reading_choices(default_voice, reading or stored),
        reading_label=reading_label(stored),
        can_review=principal.can(Action.APPROVE_BULLETIN) and bulletin.status == BulletinStatus.SUBMITTED,
        can_play=principal.can(Action.BROADCAST) and bulletin.status == BulletinStatus.APPROVED,
        can_schedule=principal.can(Action.SCHEDULE)
        and bulletin.status == BulletinStatus.APPROVED
        and bulletin.priority != "emergency",
        **{"flash": None, "spoken": None, "preview_sha": None, "error": None, **extra},
    )


@router.post("/bulletins/{bulletin_id}/submit")
def submit(request: Request, bulletin_id: str, session: SessionDep, principal: Drafter) -> Response:
    bulletin_for(session, principal, bulletin_id)
    try:
        submit_bulletin(session, bulletin_id, principal, ip=client_ip(request))
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được gửi duyệt bản tin này.") from exc
    except BulletinError as exc:
        raise FormProblem("Bản tin này không ở trạng thái gửi duyệt được.") from exc
    return RedirectResponse(f"/bulletins/{bulletin_id}", status_code=303)


@router.post("/bulletins/{bulletin_id}/edit")
def edit(
    request: Request,
    bulletin_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Drafter,
    title: Annotated[str, Form(max_length=MAX_TITLE)] = "",
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    voice: Annotated[str, Form(max_length=40)] = "",
    speed: Annotated[str, Form(max_length=10)] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    bulletin = bulletin_for(session, principal, bulletin_id)
    if bulletin.kind == BulletinKind.RELAY:  # its form posts to /bulletins/{id}/edit-relay (pages_relay.py)
        raise FormProblem("Bản tin tiếp sóng được sửa bằng mẫu “Sửa bản tin” trên trang của nó.")
    ip = client_ip(request)
    default_voice = runtime.settings.tts_voice
    # A form without the choices (an older page still open) leaves the bulletin's reading as it was.
    reading = None
    if voice or speed:
        reading = chosen_reading(voice or bulletin.voice or "", speed, default_voice, kept_voice=bulletin.voice)
    if action == "preview":  # listen before saving: nothing is stored
        heard = reading or stored_reading(bulletin.voice, bulletin.rate_wpm, default_voice)
        if not text.strip():
            return render_bulletin(
                request, session, principal, bulletin, status_code=422, edit=(title, text), reading=heard,
                error="Hãy nhập nội dung bản tin.",
            )  # fmt: skip
        return render_bulletin(
            request, session, principal, bulletin, edit=(title, text), reading=heard, **_preview(runtime, text, heard)
        )
    try:
        edit_text_bulletin(
            session,
            runtime.settings.audio_dir,
            bulletin_id,
            principal,
            title=title,
            text=text,
            voice=reading.voice if reading else None,
            rate_wpm=reading.rate_wpm if reading else KEEP,
            default_voice=default_voice,
            target_lufs=runtime.settings.target_lufs,
            ip=ip,
        )
        if action == "submit":
            submit_bulletin(session, bulletin_id, principal, ip=ip)
    except BulletinForbidden as exc:
        raise PageForbidden("Bạn không được sửa bản tin này.") from exc
    except BulletinError as exc:
        raise FormProblem(f"Chưa sửa được bản tin: {exc}") from exc
    return RedirectResponse(f"/bulletins/{bulletin_id}", status_code=303)


@router.post("/bulletins/{bulletin_id}/play")
def play(
    request: Request,
    bulletin_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    principal: Annotated[Principal, Depends(allowed(Action.BROADCAST))],
    unit_ids: Annotated[list[RowId], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    start_local: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    bulletin = bulletin_for(session, principal, bulletin_id)
    if bulletin.priority == "emergency" and not principal.can(Action.EMERGENCY):
        raise PageForbidden("Chỉ người có quyền phát khẩn cấp mới phát được bản tin khẩn cấp.")
    chosen = check_targets(session, principal, unit_ids)
    start_at = start_from_form(start_local, runtime.clock.now())
    broadcast, _ = play_now(
        session, runtime, background, principal, bulletin.id, chosen, ip=client_ip(request), start_at=start_at
    )
    return RedirectResponse(f"/history/{broadcast.id}", status_code=303)
