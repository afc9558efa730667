"""A schedule file sent over the network (API, console) rather than read on the server: checked, then applied.

Besides the checks of every schedule file, such a file may not name audio files (they would be read from the
server's own disk: those files are applied there with `bcast schedule apply`), an account limited to an area
may apply it only inside that area (`file_scope.py`), and applying it needs a role that approves bulletins:
its text and stream (relay) items go on air as approved bulletins, so an editor may check a file but not
apply it. A change is audited as `schedule.apply`.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from broadcast_server.accounts.principal import Action, NotPermitted, Principal
from broadcast_server.audit.log import record
from broadcast_server.scheduling.apply import ApplyResult, apply_schedule
from broadcast_server.scheduling.file_scope import file_outside_scope
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml
from broadcast_server.settings import Settings

MAX_SENT_FILE_BYTES = 1_000_000  # the example week is 5 kB


class FileOutsideScope(PermissionError):
    """The file reaches beyond the sender's area; `problems` says where, in both languages."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.english for p in problems))


def apply_sent_file(
    session: Session,
    data: bytes,
    *,
    principal: Principal,
    settings: Settings,
    now: datetime,
    via: str,
    dry_run: bool = False,
    accept_conflicts: bool = False,
    ip: str | None = None,
) -> ApplyResult:
    """Check and apply the file in the caller's transaction (the caller commits and pokes the pusher).

    Raises ScheduleFileError (any problem of the file, UTF-8 and size included), FileOutsideScope, or
    NotPermitted (applying, not checking, without the right to approve bulletins).
    """
    if not dry_run and not principal.can(Action.APPROVE_BULLETIN):
        raise NotPermitted(
            "applying a schedule file approves its text items and relays: it needs a role that approves bulletins "
            "(approver or admin); a dry run only checks it"
        )
    if len(data) > MAX_SENT_FILE_BYTES:
        limit = f"{MAX_SENT_FILE_BYTES:,}"
        raise ScheduleFileError(
            [Problem("", f"tệp lịch tối đa {limit} byte", f"a schedule file is at most {limit} bytes")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScheduleFileError([Problem("", "tệp không phải văn bản UTF-8", "the file is not UTF-8 text")]) from None
    spec = parse_schedule_yaml(text)
    on_disk = [
        Problem(
            f"programmes[{i}].items[{j}].audio_file",
            "tệp âm thanh được đọc trên ổ đĩa của máy chủ: hãy tải bản ghi âm lên thành bản tin, duyệt, rồi "
            "ghi `bulletin: <mã bản tin>`; hoặc áp dụng tệp này trên máy chủ bằng `bcast schedule apply`",
            "audio files are read from the server's disk: upload the recording as a bulletin, approve it and "
            "name it with `bulletin: <id>`, or apply this file there with `bcast schedule apply`",
        )
        for i, programme in enumerate(spec.programmes)
        for j, item in enumerate(programme.items)
        if item.audio_file is not None
    ]
    if on_disk:
        raise ScheduleFileError(on_disk)
    beyond = file_outside_scope(session, principal, spec)
    if beyond:
        raise FileOutsideScope(beyond)
    result = apply_schedule(
        session,
        spec,
        audio_dir=settings.audio_dir,
        base_dir=settings.audio_dir,  # unused: no item names a file
        public_url=settings.public_url,
        now=now,
        voice=settings.tts_voice,
        target_lufs=settings.target_lufs,
        accept_conflicts=accept_conflicts,
        dry_run=dry_run,
    )
    if result.applied and (result.created or result.updated):
        record(
            session,
            principal=principal,
            action="schedule.apply",
            object_type="schedule_file",
            object_id=via,
            detail={
                "bytes": len(data),
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "conflicts": len(result.conflicts),
            },
            ip=ip,
        )
    return result
