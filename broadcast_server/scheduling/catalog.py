"""The stored schedule as the pure code needs it: slots with their items' audio (or relayed stream) and their
clusters."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlmodel import Session, select

from broadcast_server.models import AudioAsset, Bulletin, BulletinKind, Programme, ProgrammeItem, Slot, TargetGroup
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.schedule_file import TargetSpec
from broadcast_server.scheduling.targets import resolve, unit_paths
from broadcast_server.scheduling.windows import ResolvedSlot, entries_by_cluster
from broadcast_server.services.tree_query import load_cluster_units, load_units
from speaker_agent.playout import AudioRef, Entry, Item, StreamRef


def audio_url(public_url: str, sha256: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/audio/{sha256}"


def target_spec(raw: dict) -> TargetSpec:
    return TargetSpec(tuple(raw.get("units", ())), tuple(raw.get("clusters", ())), tuple(raw.get("groups", ())))


def load_resolved_slots(session: Session, public_url: str) -> list[ResolvedSlot]:
    """Every slot not cancelled, with audio references (a relay item: its stream and length) and today's clusters
    of its target. An item whose bulletin has neither audio nor a stream is left out."""
    units = load_units(session)
    paths = unit_paths(units)
    cluster_units = load_cluster_units(session)
    groups = {g.name: target_spec(g.target) for g in session.exec(select(TargetGroup))}
    items_of: dict[str, list[Item]] = {}
    bulletins_of: dict[str, list[str]] = {}
    rows = session.exec(
        select(ProgrammeItem, Bulletin, AudioAsset)
        .join(Bulletin, Bulletin.id == ProgrammeItem.bulletin_id)  # type: ignore[arg-type]
        .outerjoin(AudioAsset, AudioAsset.id == Bulletin.audio_asset_id)  # type: ignore[arg-type]
        .order_by(ProgrammeItem.programme_id, ProgrammeItem.position)  # type: ignore[arg-type]
    ).all()
    for item, bulletin, asset in rows:
        playout = _playout_item(item, bulletin, asset, public_url)
        if playout is None:
            continue
        items_of.setdefault(item.programme_id, []).append(playout)
        bulletins_of.setdefault(item.programme_id, []).append(item.bulletin_id)
    programmes = {p.id: p for p in session.exec(select(Programme))}
    slots = []
    for slot in session.exec(select(Slot).where(Slot.cancelled_at.is_(None)).order_by(Slot.id)):  # type: ignore[union-attr]
        problems: list[Problem] = []
        clusters = resolve(
            target_spec(slot.target),
            f"slot {slot.id}",
            units=units,
            paths=paths,
            cluster_units=cluster_units,
            groups=groups,
            problems=problems,
        )
        programme = programmes[slot.programme_id]
        slots.append(
            ResolvedSlot(
                id=slot.id,
                title=programme.title,
                start_date=date.fromisoformat(slot.start_date),
                start_time=time.fromisoformat(slot.start_time),
                rule=slot.rule,
                until=date.fromisoformat(slot.until) if slot.until else None,
                layer=slot.layer,
                on_interrupt=programme.on_interrupt,
                items=tuple(items_of.get(slot.programme_id, ())),
                cluster_ids=clusters,
                bulletin_ids=tuple(bulletins_of.get(slot.programme_id, ())),
            )
        )
    return slots


def _playout_item(item: ProgrammeItem, bulletin: Bulletin, asset: AudioAsset | None, public_url: str) -> Item | None:
    """A stored item as the agents' planner sees it: its bulletin's audio, or a relay's stream for its length."""
    if bulletin.kind == BulletinKind.RELAY:
        if not bulletin.stream_url or not bulletin.relay_duration_s:
            return None
        stream = StreamRef(bulletin.stream_url, float(bulletin.relay_duration_s))
        return Item(item.title, priority=item.priority, stream=stream)
    if asset is None:
        return None
    ref = AudioRef(audio_url(public_url, asset.id), asset.id, asset.size_bytes, asset.duration_s)
    return Item(item.title, ref, item.priority)


def cluster_entries(session: Session, public_url: str, start: datetime, end: datetime) -> dict[str, list[Entry]]:
    """Each cluster's entries between start and end, from the stored schedule."""
    return dict(entries_by_cluster(load_resolved_slots(session, public_url), start, end))
