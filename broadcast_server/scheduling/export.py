"""Write the stored schedule back as a schedule file, so a district can keep it in version control."""

from __future__ import annotations

from typing import Any

import yaml
from sqlmodel import Session, select

from broadcast_server.models import Bulletin, BulletinKind, Programme, ProgrammeItem, Slot, TargetGroup
from broadcast_server.scheduling.schedule_file import SCHEDULE_FILE_VERSION


def export_schedule(session: Session) -> str:
    """YAML that `parse_schedule_yaml` reads back to the same schedule (cancelled slots are left out)."""
    programmes: list[dict[str, Any]] = []
    for programme in session.exec(select(Programme).order_by(Programme.id)):
        items = []
        rows = session.exec(
            select(ProgrammeItem, Bulletin)
            .join(Bulletin, Bulletin.id == ProgrammeItem.bulletin_id)  # type: ignore[arg-type]
            .where(ProgrammeItem.programme_id == programme.id)
            .order_by(ProgrammeItem.position)  # type: ignore[arg-type]
        ).all()
        for item, bulletin in rows:
            entry: dict[str, Any] = {"title": item.title}
            # An item naming an approved bulletin (or, stored before names_bulletin existed, a recording
            # without a file) is written as that bulletin's id; its category is the bulletin's own.
            relay = bulletin.kind == BulletinKind.RELAY
            named = item.names_bulletin or (item.source is None and bulletin.text is None and not relay)
            if named:
                entry["bulletin"] = bulletin.id
            elif relay:  # a `stream:` item of a file: its address and whole minutes, as the file had them
                entry["stream"] = bulletin.stream_url
                entry["minutes"] = (bulletin.relay_duration_s or 0) // 60
            elif item.source is not None:
                entry["audio_file"] = item.source
            else:
                entry["text"] = bulletin.text
                if bulletin.voice:
                    entry["voice"] = bulletin.voice
                if bulletin.rate_wpm is not None:
                    entry["rate_wpm"] = bulletin.rate_wpm
            if item.priority != "normal":
                entry["priority"] = item.priority
            if bulletin.category and not named:
                entry["category"] = bulletin.category
            items.append(entry)
        programmes.append(
            {"id": programme.id, "title": programme.title, "on_interrupt": programme.on_interrupt, "items": items}
        )
    groups = {
        g.name: {k: v for k, v in g.target.items() if v}
        for g in session.exec(select(TargetGroup).order_by(TargetGroup.name))
    }
    slots = []
    for slot in session.exec(select(Slot).where(Slot.cancelled_at.is_(None)).order_by(Slot.id)):  # type: ignore[union-attr]
        entry = {"id": slot.id, "programme": slot.programme_id, "from": slot.start_date, "start": slot.start_time}
        if slot.rule:
            entry["rule"] = slot.rule
        if slot.until:
            entry["until"] = slot.until
        if slot.layer != "background":
            entry["layer"] = slot.layer
        entry["target"] = {k: v for k, v in slot.target.items() if v}
        slots.append(entry)
    document: dict[str, Any] = {
        "version": SCHEDULE_FILE_VERSION,
        "timezone": "Asia/Ho_Chi_Minh",
        "programmes": programmes,
    }
    if groups:
        document["groups"] = groups
    document["slots"] = slots
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110)
