"""Apply a schedule file: render its audio, check targets and conflicts, then store it idempotently.

A `stream:` item (a live relay) has nothing to render: it is stored as an approved relay bulletin, as a text
item is stored as an approved text bulletin, and plans with its relay's length.

Nothing is stored when a target is unknown, an audio file is bad, or conflicts were found and not
accepted: the caller shows the conflicts, with the rule the planner will apply, before saving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

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
    TargetGroup,
)
from broadcast_server.scheduling.catalog import audio_url, load_resolved_slots
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.schedule_file import ItemSpec, ScheduleFileError, ScheduleSpec
from broadcast_server.scheduling.targets import resolve, unit_paths
from broadcast_server.scheduling.windows import ResolvedSlot, entries_by_cluster
from broadcast_server.services.bulletins import store_rendered
from broadcast_server.services.tree_query import load_cluster_units, load_units
from speaker_agent.playout import AudioRef, Item, StreamRef, find_conflicts

CONFLICT_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class ConflictNotice:
    """Two slots that overlap on some clusters, when first, and what the planner does about it."""

    first_slot: str
    second_slot: str
    rule: str
    clusters: int
    first_at: datetime
    overlap_s: float


@dataclass
class ApplyResult:
    applied: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: list[ConflictNotice] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedItem:
    """A programme item of a schedule file with its audio stored, or its relay known: what the conflict check
    plans with."""

    spec: ItemSpec
    asset: AudioAsset | None  # None for a live relay
    bulletin_id: str | None = None  # the approved bulletin a `bulletin:` item names (None: made from the file)
    stream: StreamRef | None = None  # a relay's stream and length (a `stream:` item, or a named relay bulletin)

    @classmethod
    def relay(cls, spec: ItemSpec) -> RenderedItem:
        """A `stream:` item of the file: its own relay, stored as a new approved relay bulletin."""
        return cls(spec, None, None, StreamRef(spec.stream or "", float(spec.relay_duration_s or 0)))

    @classmethod
    def of_bulletin(cls, spec: ItemSpec, bulletin: Bulletin, asset: AudioAsset | None) -> RenderedItem:
        """An approved bulletin played as it is: its audio, or for a relay its stream and length."""
        if bulletin.kind == BulletinKind.RELAY:
            stream = StreamRef(bulletin.stream_url or "", float(bulletin.relay_duration_s or 0))
            return cls(spec, None, bulletin.id, stream)
        return cls(spec, asset, bulletin.id)

    def playout_item(self, public_url: str) -> Item:
        """The item as the agents' planner sees it."""
        if self.stream is not None:
            return Item(self.spec.title, priority=self.spec.priority, stream=self.stream)
        asset = self.asset
        assert asset is not None
        ref = AudioRef(audio_url(public_url, asset.id), asset.id, asset.size_bytes, asset.duration_s)
        return Item(self.spec.title, ref, self.spec.priority)


def apply_schedule(
    session: Session,
    spec: ScheduleSpec,
    *,
    audio_dir: Path,
    base_dir: Path,
    public_url: str,
    now: datetime | None = None,
    voice: str = "vi",
    target_lufs: float = -16.0,
    accept_conflicts: bool = False,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Check, then (unless dry_run, or conflicts not accepted) store the file's schedule."""
    now = now or utcnow()
    units = load_units(session)
    paths = unit_paths(units)
    cluster_units = load_cluster_units(session)
    problems: list[Problem] = []
    clusters_of = {
        slot.id: resolve(
            slot.target,
            f"slots[{i}].target",
            units=units,
            paths=paths,
            cluster_units=cluster_units,
            groups=spec.groups,
            problems=problems,
        )
        for i, slot in enumerate(spec.slots)
    }
    for name, group in spec.groups.items():
        resolve(
            group, f"groups.{name}", units=units, paths=paths, cluster_units=cluster_units, groups={}, problems=problems
        )
    if problems:
        raise ScheduleFileError(sorted(set(problems)))
    rendered = _render_items(
        session, spec, audio_dir=audio_dir, base_dir=base_dir, voice=voice, target_lufs=target_lufs, progress=progress
    )

    conflicts = schedule_conflicts(session, spec, rendered, clusters_of, public_url, now)
    if dry_run or (conflicts and not accept_conflicts):
        session.rollback()  # audio files stay in the content-addressed store; no row is kept
        return ApplyResult(applied=False, conflicts=conflicts)
    result = ApplyResult(applied=True, conflicts=conflicts)
    _store(session, spec, rendered, result, now)
    return result


def _render_items(
    session: Session,
    spec: ScheduleSpec,
    *,
    audio_dir: Path,
    base_dir: Path,
    voice: str,
    target_lufs: float,
    progress: Callable[[str], None] | None,
) -> dict[str, list[RenderedItem]]:
    from audio.errors import AudioError
    from audio.render import render
    from audio.speech import text_to_broadcast_audio
    from audio.tts.engine import TtsError

    out: dict[str, list[RenderedItem]] = {}
    problems: list[Problem] = []
    for i, programme in enumerate(spec.programmes):
        for j, item in enumerate(programme.items):
            where = f"programmes[{i}].items[{j}]"
            if progress:
                progress(f"{programme.id}: {item.title}")
            if item.bulletin is not None:
                named = _named_bulletin(session, item.bulletin, f"{where}.bulletin")
                if isinstance(named, Problem):
                    problems.append(named)
                else:
                    out.setdefault(programme.id, []).append(RenderedItem.of_bulletin(item, *named))
                continue
            if item.stream is not None:  # a live relay: nothing to render, nothing to fetch
                out.setdefault(programme.id, []).append(RenderedItem.relay(item))
                continue
            try:
                if item.text is not None:
                    result = text_to_broadcast_audio(
                        item.text, audio_dir, voice=item.voice or voice, rate_wpm=item.rate_wpm, target_lufs=target_lufs
                    )
                else:
                    source = (base_dir / item.audio_file).resolve()  # type: ignore[operator]
                    audio_dir.mkdir(parents=True, exist_ok=True)
                    staging = audio_dir / f".schedule-{programme.id}-{j}.mp3"
                    result = render(source, staging, target_lufs=target_lufs)
                    final = audio_dir / f"{result.sha256}.mp3"
                    staging.replace(final)
                    result = dataclasses.replace(result, path=final)
            except (AudioError, TtsError, OSError) as exc:
                problems.append(Problem(where, f"không tạo được âm thanh: {exc}", f"cannot make its audio: {exc}"))
                continue
            asset = store_rendered(session, audio_dir, result)
            out.setdefault(programme.id, []).append(RenderedItem(item, asset))
    if problems:
        session.rollback()
        raise ScheduleFileError(problems)
    return out


def _named_bulletin(session: Session, bulletin_id: str, where: str) -> tuple[Bulletin, AudioAsset | None] | Problem:
    """The approved, non-emergency bulletin a `bulletin:` item names, with its audio (none for a relay); else why
    not."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        return Problem(where, f"không có bản tin {bulletin_id!r}", f"no bulletin {bulletin_id!r}")
    if bulletin.status != BulletinStatus.APPROVED:
        return Problem(
            where,
            f"bản tin {bulletin_id!r} chưa được duyệt ({bulletin.status})",
            f"bulletin {bulletin_id!r} is {bulletin.status}, not approved",
        )
    if bulletin.priority == Priority.EMERGENCY:
        return Problem(
            where,
            "tin khẩn cấp không xếp lịch: phát ngay bằng lệnh khẩn cấp",
            "an emergency bulletin is not scheduled: send it as an emergency broadcast",
        )
    if bulletin.kind == BulletinKind.RELAY:
        if not bulletin.stream_url or not bulletin.relay_duration_s:
            return Problem(
                where,
                f"bản tin tiếp sóng {bulletin_id!r} thiếu địa chỉ luồng hoặc thời lượng",
                f"relay bulletin {bulletin_id!r} has no stream address or length",
            )
        return bulletin, None
    asset = session.get(AudioAsset, bulletin.audio_asset_id) if bulletin.audio_asset_id else None
    if asset is None:
        return Problem(where, f"bản tin {bulletin_id!r} chưa có âm thanh", f"bulletin {bulletin_id!r} has no audio")
    return bulletin, asset


def schedule_conflicts(
    session: Session,
    spec: ScheduleSpec,
    rendered: dict[str, list[RenderedItem]],
    clusters_of: dict[str, frozenset[str]],
    public_url: str,
    now: datetime,
) -> list[ConflictNotice]:
    programmes = {p.id: p for p in spec.programmes}
    file_ids = {s.id for s in spec.slots}
    slots = [s for s in load_resolved_slots(session, public_url) if s.id not in file_ids]
    for slot in spec.slots:
        programme = programmes[slot.programme]
        items = tuple(r.playout_item(public_url) for r in rendered.get(slot.programme, []))
        slots.append(
            ResolvedSlot(
                slot.id,
                programme.title,
                slot.start_date,
                slot.start_time,
                slot.rule,
                slot.until,
                slot.layer,
                programme.on_interrupt,
                items,
                clusters_of[slot.id],
            )
        )
    from broadcast_server.scheduling.recurrence import LOCAL_TZ

    firsts = [datetime.combine(s.start_date, s.start_time, LOCAL_TZ) for s in spec.slots]
    start = max(now, min(firsts)) if firsts else now
    # Look at least two weeks past the latest first airing, so a one-off months ahead is checked too.
    end = max(start, max(firsts, default=start)) + CONFLICT_HORIZON
    found: dict[tuple[str, str, str], ConflictNotice] = {}
    counts: dict[tuple[str, str, str], set[str]] = {}
    # An airing begun before `start` may still be on air then (a 30-minute relay at 18:00, a file's one-off at
    # 18:10): expand from as long before as the longest airing lasts, and keep the overlaps from `start` on.
    longest = max((sum(i.duration_s for i in s.items) for s in slots), default=0.0)
    entries = entries_by_cluster(slots, start - timedelta(seconds=longest), end)
    for cluster_id, cluster_entries in entries.items():
        starts = {e.id: e.start_at for e in cluster_entries}
        for conflict in find_conflicts(cluster_entries):
            if starts[conflict.second] < start:
                continue
            key = (conflict.first.split("@")[0], conflict.second.split("@")[0], conflict.rule)
            counts.setdefault(key, set()).add(cluster_id)
            first_at = starts[conflict.second]
            if key not in found or first_at < found[key].first_at:
                found[key] = ConflictNotice(key[0], key[1], key[2], 0, first_at, conflict.overlap_s)
    return [
        ConflictNotice(n.first_slot, n.second_slot, n.rule, len(counts[k]), n.first_at, n.overlap_s)
        for k, n in sorted(found.items(), key=lambda kv: kv[1].first_at)
    ]


def _own_bulletin_fields(item: RenderedItem) -> dict:
    """What the approved bulletin made for a text, audio_file or stream item holds of it (title and priority aside).

    An item whose stored bulletin differs in any of these gets a new bulletin (text aside: the same audio is the
    same text, and a text is only compared through its audio)."""
    spec = item.spec
    if spec.stream is not None:
        kind = BulletinKind.RELAY
    else:
        kind = BulletinKind.TEXT if spec.text is not None else BulletinKind.AUDIO
    return {
        "kind": kind.value,
        "text": spec.text,
        "category": spec.category,
        "audio_asset_id": item.asset.id if item.asset is not None else None,
        "voice": spec.voice,
        "rate_wpm": spec.rate_wpm,
        "stream_url": spec.stream,
        "relay_duration_s": spec.relay_duration_s,
    }


def _store(
    session: Session, spec: ScheduleSpec, rendered: dict[str, list[RenderedItem]], result: ApplyResult, now: datetime
) -> None:
    def count(changed: bool, created: bool) -> None:
        if created:
            result.created += 1
        elif changed:
            result.updated += 1
        else:
            result.unchanged += 1

    for programme in spec.programmes:
        row = session.get(Programme, programme.id)
        created = row is None
        if row is None:
            row = Programme(
                id=programme.id,
                title=programme.title,
                on_interrupt=programme.on_interrupt,
                created_at=now,
                updated_at=now,
            )
        changed = (row.title, row.on_interrupt) != (programme.title, programme.on_interrupt)
        row.title, row.on_interrupt = programme.title, programme.on_interrupt
        session.add(row)
        session.flush()
        existing = {
            i.position: i for i in session.exec(select(ProgrammeItem).where(ProgrammeItem.programme_id == programme.id))
        }
        for position, item in enumerate(rendered.get(programme.id, [])):
            current = existing.pop(position, None)
            if item.bulletin_id is not None:  # names an approved bulletin: point at it, make no copy
                row = current or ProgrammeItem(programme_id=programme.id, position=position, title="", bulletin_id="")
                stored = (row.title, row.priority, row.bulletin_id, row.source, row.names_bulletin)
                wanted = (item.spec.title, item.spec.priority, item.bulletin_id, None, True)
                if stored != wanted:
                    row.title, row.priority, row.bulletin_id, row.source, row.names_bulletin = wanted
                    session.add(row)
                    changed = True
                continue
            bulletin = session.get(Bulletin, current.bulletin_id) if current else None
            wanted = _own_bulletin_fields(item)
            same = (
                current is not None
                and not current.names_bulletin
                and bulletin is not None
                and all(getattr(bulletin, k) == v for k, v in wanted.items() if k != "text")
                and (current.title, current.priority, current.source)
                == (item.spec.title, item.spec.priority, item.spec.audio_file)
            )
            if same:
                continue
            changed = True
            bulletin = Bulletin(
                title=item.spec.title,
                priority=item.spec.priority,
                status=BulletinStatus.APPROVED.value,
                created_at=now,
                **wanted,
            )
            session.add(bulletin)
            session.flush()
            if current is None:
                current = ProgrammeItem(
                    programme_id=programme.id, position=position, title=item.spec.title, bulletin_id=bulletin.id
                )
            current.title, current.priority, current.bulletin_id = item.spec.title, item.spec.priority, bulletin.id
            current.source, current.names_bulletin = item.spec.audio_file, False
            session.add(current)
        for leftover in existing.values():
            session.delete(leftover)
            changed = True
        if changed and not created:
            row.updated_at = now
        count(changed, created)

    for name, group in spec.groups.items():
        target = {"units": list(group.units), "clusters": list(group.clusters)}
        row = session.get(TargetGroup, name)
        count(row is not None and row.target != target, row is None)
        session.merge(TargetGroup(name=name, target=target))

    for slot in spec.slots:
        values = {
            "programme_id": slot.programme,
            "start_date": slot.start_date.isoformat(),
            "start_time": slot.start_time.strftime("%H:%M"),
            "rule": slot.rule,
            "until": slot.until.isoformat() if slot.until else None,
            "layer": slot.layer,
            "target": {
                "units": list(slot.target.units),
                "clusters": list(slot.target.clusters),
                "groups": list(slot.target.groups),
            },
        }
        row = session.get(Slot, slot.id)
        if row is None:
            session.add(Slot(id=slot.id, created_at=now, updated_at=now, **values))
            count(True, True)
            continue
        changed = any(getattr(row, k) != v for k, v in values.items()) or row.cancelled_at is not None
        if changed:
            for k, v in values.items():
                setattr(row, k, v)
            row.cancelled_at = None
            row.updated_at = now
            session.add(row)
        count(changed, False)
    session.flush()
