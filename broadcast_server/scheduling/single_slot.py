"""Schedule one approved bulletin from the console: once at a local date and time, or weekly on chosen days.

A live relay (tiếp sóng, the VOV news at 18:00) is scheduled the same way: its item relays the stream for the
relay's length.

It becomes a one-item programme and a slot, checked with the same conflict check as a schedule file
(`apply.py`), so the conflicts and the rule the planner will apply are known before anything is saved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import OutOfScope, common_unit, target_outside_scope, unit_in_scope
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.models import (
    AudioAsset,
    Bulletin,
    BulletinKind,
    BulletinStatus,
    Priority,
    Programme,
    ProgrammeItem,
    Slot,
)
from broadcast_server.scheduling.apply import ConflictNotice, RenderedItem, schedule_conflicts
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.scheduling.schedule_file import ItemSpec, ProgrammeSpec, ScheduleSpec, SlotSpec, TargetSpec
from broadcast_server.scheduling.slot_words import DAY_CODES
from broadcast_server.scheduling.targets import unit_paths
from broadcast_server.services.tree_query import load_cluster_units, load_units

WEEKDAYS = DAY_CODES  # RFC 5545 day codes, Monday first as in Vietnam
LAYERS = ("background", "insert")


class SingleSlotError(ValueError):
    """A scheduling request that cannot be honoured; `problems` in Vietnamese (the form), `problems_en` (the API)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = [str(p) for p in problems]
        self.problems_en = [p.english for p in problems]
        super().__init__("; ".join(self.problems_en))


@dataclass(frozen=True)
class SingleSlotRequest:
    bulletin_id: str
    start_date: date  # local
    start_time: time  # local, minutes
    unit_ids: tuple[int, ...]
    weekdays: tuple[str, ...] = ()  # empty: once
    until: date | None = None  # last local day of a weekly slot
    layer: str = "background"


@dataclass
class SingleSlotResult:
    applied: bool
    slot_id: str | None
    clusters: int
    conflicts: list[ConflictNotice] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # slot id -> programme title, for the conflicts shown


def rule_for(weekdays: tuple[str, ...]) -> str | None:
    return f"FREQ=WEEKLY;BYDAY={','.join(weekdays)}" if weekdays else None


def _check(session: Session, request: SingleSlotRequest, now: datetime) -> tuple[Bulletin, AudioAsset | None]:
    """The approved bulletin and its audio (None for a relay), or every reason the request is refused."""
    problems: list[Problem] = []
    bulletin = session.get(Bulletin, request.bulletin_id)
    asset = session.get(AudioAsset, bulletin.audio_asset_id) if bulletin and bulletin.audio_asset_id else None
    if bulletin is None:
        problems.append(Problem("", "không có bản tin này", f"bulletin {request.bulletin_id!r} does not exist"))
    elif bulletin.status != BulletinStatus.APPROVED:
        problems.append(
            Problem(
                "",
                "chỉ lên lịch được bản tin đã duyệt",
                f"bulletin is {bulletin.status}: only approved ones can be scheduled",
            )
        )
    elif bulletin.priority == Priority.EMERGENCY:
        problems.append(
            Problem(
                "",
                "tin khẩn cấp không lên lịch: hãy dùng “Phát khẩn cấp”",
                "an emergency bulletin is not scheduled: send it as an emergency broadcast",
            )
        )
    elif bulletin.kind == BulletinKind.RELAY:
        if not bulletin.stream_url or not bulletin.relay_duration_s:
            problems.append(
                Problem(
                    "",
                    "bản tin tiếp sóng thiếu địa chỉ luồng hoặc thời lượng",
                    "relay bulletin has no stream address or length",
                )
            )
    elif asset is None:
        problems.append(Problem("", "bản tin chưa có âm thanh", "bulletin has no audio yet"))
    unknown = [d for d in request.weekdays if d not in WEEKDAYS]
    if unknown:
        problems.append(
            Problem(
                "",
                f"ngày trong tuần không hợp lệ: {', '.join(unknown)}",
                f"unknown weekdays {', '.join(unknown)}: use {','.join(WEEKDAYS)}",
            )
        )
    if request.layer not in LAYERS:
        problems.append(Problem("", "lớp phát không hợp lệ", f"layer must be one of {', '.join(LAYERS)}"))
    if not request.unit_ids:
        problems.append(Problem("", "hãy chọn ít nhất một địa bàn", "give at least one unit id"))
    if request.until is not None and request.until < request.start_date:
        problems.append(Problem("", "ngày kết thúc phải sau ngày bắt đầu", "until must not be before the start date"))
    first = datetime.combine(request.start_date, request.start_time, LOCAL_TZ)
    if not request.weekdays and first <= now:
        problems.append(
            Problem(
                "", "giờ phát đã qua: hãy chọn một thời điểm sắp tới", "the start time has passed: choose one to come"
            )
        )
    if problems:
        raise SingleSlotError(problems)
    assert bulletin is not None
    return bulletin, asset


def schedule_bulletin(
    session: Session,
    request: SingleSlotRequest,
    *,
    public_url: str,
    principal: Principal | None = None,
    now: datetime | None = None,
    accept_conflicts: bool = False,
    dry_run: bool = False,
    ip: str | None = None,
) -> SingleSlotResult:
    """Check, then (unless dry_run, or conflicts not accepted) store the bulletin's programme and slot."""
    now = now or utcnow()
    if principal is not None:
        bulletin = session.get(Bulletin, request.bulletin_id)
        if bulletin is not None and not unit_in_scope(session, principal, bulletin.owner_unit_id):
            raise OutOfScope(f"bulletin {request.bulletin_id!r} belongs to a unit outside your scope")
        refusal = target_outside_scope(session, principal, request.unit_ids, ())
        if refusal:
            raise OutOfScope(refusal)
    bulletin, asset = _check(session, request, now)
    units = load_units(session)
    missing = [u for u in request.unit_ids if u not in units]
    if missing:
        raise SingleSlotError([Problem("", f"không có địa bàn {u}", f"unit {u} does not exist") for u in missing])
    path_of = {unit_id: path for path, unit_id in unit_paths(units).items()}
    target = TargetSpec(units=tuple(path_of[u] for u in request.unit_ids))
    from broadcast_server.domain.targeting import resolve_target

    clusters = frozenset(resolve_target(units, load_cluster_units(session), request.unit_ids, ()))
    slot_id = f"ct-{uuid.uuid4().hex[:16]}"
    item = ItemSpec(
        bulletin.title,
        text=bulletin.text,
        priority=bulletin.priority if bulletin.priority == Priority.PRIORITY else Priority.NORMAL.value,
        category=bulletin.category,
    )
    rule = rule_for(request.weekdays)
    slot = SlotSpec(
        slot_id, slot_id, request.start_date, request.start_time, target, rule, request.until, request.layer
    )
    spec = ScheduleSpec(programmes=(ProgrammeSpec(slot_id, bulletin.title, (item,)),), slots=(slot,))
    rendered = {slot_id: [RenderedItem.of_bulletin(item, bulletin, asset)]}
    conflicts = schedule_conflicts(session, spec, rendered, {slot_id: clusters}, public_url, now)
    titles = _titles(session, conflicts)
    titles[slot_id] = bulletin.title
    if dry_run or (conflicts and not accept_conflicts):
        return SingleSlotResult(False, None, len(clusters), conflicts, titles)
    session.add(Programme(id=slot_id, title=bulletin.title, created_at=now, updated_at=now))
    session.flush()
    session.add(
        ProgrammeItem(
            programme_id=slot_id,
            position=0,
            title=bulletin.title,
            priority=item.priority,
            bulletin_id=bulletin.id,
            names_bulletin=True,  # exported as `bulletin: <id>`, so the file reads back to this very item
        )
    )
    session.add(
        Slot(
            id=slot_id,
            programme_id=slot_id,
            start_date=request.start_date.isoformat(),
            start_time=request.start_time.strftime("%H:%M"),
            rule=rule,
            until=request.until.isoformat() if request.until else None,
            layer=request.layer,
            target={"units": list(target.units), "clusters": [], "groups": []},
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    record(
        session,
        principal=principal,
        action="schedule.create",
        object_type="slot",
        object_id=slot_id,
        detail={
            "bulletin_id": bulletin.id,
            "start": f"{request.start_date} {request.start_time:%H:%M}",
            "rule": rule,
            "until": request.until.isoformat() if request.until else None,
            "units": list(target.units),
            "clusters": len(clusters),
            "conflicts": len(conflicts),
        },
        ip=ip,
        unit_id=common_unit(session, request.unit_ids),
    )
    return SingleSlotResult(True, slot_id, len(clusters), conflicts, titles)


def _titles(session: Session, conflicts: list[ConflictNotice]) -> dict[str, str]:
    ids = {c.first_slot for c in conflicts} | {c.second_slot for c in conflicts}
    if not ids:
        return {}
    rows = session.exec(
        select(Slot.id, Programme.title).join(Programme, Programme.id == Slot.programme_id).where(Slot.id.in_(ids))  # type: ignore[arg-type,attr-defined]
    ).all()
    return dict(rows)
