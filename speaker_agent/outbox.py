"""Reports waiting for the broker's acknowledgement, kept on disk so a power cut loses none.

When the disk refuses a report (full), it is kept in memory and sent all the same: only a power cut
before the broker has it would lose it then.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from speaker_agent.durable_file import write_durably

log = logging.getLogger(__name__)


class Outbox:
    """One JSON file per report, named by report id; removed only after the broker's PUBACK."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory  # made on the first report
        self.unsaved: dict[str, dict[str, Any]] = {}  # reports the disk refused, by id, oldest first

    def put(self, report: dict[str, Any]) -> None:
        path = self.directory / f"{report['id']}.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_durably(path, json.dumps(report, ensure_ascii=False))
        except OSError as exc:
            log.warning("report %s kept in memory only: %s", report["id"], exc)
            self.unsaved[report["id"]] = report

    def remove(self, report_id: str) -> None:
        self.unsaved.pop(report_id, None)
        (self.directory / f"{report_id}.json").unlink(missing_ok=True)

    def pending(self) -> list[dict[str, Any]]:
        """Every report waiting, oldest on disk first, then those in memory; unreadable leftovers are dropped."""
        reports = []
        for path in sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                reports.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                path.unlink(missing_ok=True)
        return reports + list(self.unsaved.values())

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json")) + len(self.unsaved)
