"""The schedule window an agent holds on disk, so it plays on time with no network."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mqtt_contract.times import isoformat, parse_time
from speaker_agent.durable_file import write_durably
from speaker_agent.playout.plan import AudioRef, Entry, Item, StreamRef


def entry_from_message(raw: dict[str, Any]) -> Entry:
    """An Entry from the contract's schedule entry (already schema-validated)."""
    return Entry(
        id=raw["id"],
        start_at=parse_time(raw["start_at"]),
        title=raw.get("title", ""),
        layer=raw.get("layer", "background"),
        on_interrupt=raw.get("on_interrupt", "restart"),
        items=tuple(_item_from_message(item) for item in raw["items"]),
    )


def _item_from_message(raw: dict[str, Any]) -> Item:
    title, priority = raw.get("title", ""), raw.get("priority", "normal")
    if "stream" in raw:
        stream = StreamRef(url=raw["stream"]["url"], duration_s=float(raw["stream"]["duration_s"]))
        return Item(title=title, priority=priority, stream=stream)
    audio = raw["audio"]
    ref = AudioRef(
        url=audio["url"], sha256=audio["sha256"], size_bytes=audio["size_bytes"], duration_s=float(audio["duration_s"])
    )
    return Item(title=title, priority=priority, audio=ref)


def _item_to_message(item: Item) -> dict[str, Any]:
    message: dict[str, Any] = {"title": item.title[:200], "priority": item.priority}
    if item.stream is not None:
        message["stream"] = {"url": item.stream.url, "duration_s": int(item.stream.duration_s)}
    else:
        audio = item.audio
        assert audio is not None
        message["audio"] = {
            "url": audio.url,
            "sha256": audio.sha256,
            "size_bytes": audio.size_bytes,
            "duration_s": audio.duration_s,
        }
    return message


def entry_to_message(entry: Entry) -> dict[str, Any]:
    """The contract's schedule entry for an Entry (the server sends these; the agent stores them)."""
    return {
        "id": entry.id,
        "start_at": isoformat(entry.start_at),
        "title": entry.title[:200],
        "layer": entry.layer,
        "on_interrupt": entry.on_interrupt,
        "items": [_item_to_message(item) for item in entry.items],
    }


@dataclass
class ScheduleStore:
    """`schedule.json` (the window last received) and the items of it already played."""

    path: Path
    version: int = 0
    window_end: datetime | None = None
    entries: list[Entry] = field(default_factory=list)
    done: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> ScheduleStore:
        store = cls(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            store.version = int(document["version"])
            store.window_end = parse_time(document["window_end"]) if document.get("window_end") else None
            store.entries = [entry_from_message(e) for e in document["entries"]]
            store.done = {(d[0], int(d[1])) for d in document.get("done", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged file is dropped: the server sends the window again on the next push.
            store.version, store.entries, store.done = 0, [], set()
        return store

    def replace(self, version: int, window_end: datetime, entries: list[Entry]) -> bool:
        """Take a newer window; keep the record of what was played of entries that stay. False if stale."""
        if version <= self.version:
            return False
        ids = {e.id for e in entries}
        self.version, self.window_end, self.entries = version, window_end, entries
        self.done = {key for key in self.done if key[0] in ids}
        self.save()
        return True

    def mark_done(self, *keys: tuple[str, int]) -> None:
        """Record items as played (or given up); one write to disk however many."""
        self.done.update(keys)
        self.save()

    def save(self) -> None:
        document = {
            "version": self.version,
            "window_end": isoformat(self.window_end) if self.window_end else None,
            "entries": [entry_to_message(e) for e in self.entries],
            "done": sorted([list(k) for k in self.done]),
        }
        write_durably(self.path, json.dumps(document, ensure_ascii=False))
