"""Reports waiting for the broker's acknowledgement, kept on disk so a power cut loses none."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Outbox:
    """One JSON file per report, named by report id; removed only after the broker's PUBACK."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory  # made on the first report

    def put(self, report: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{report['id']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def remove(self, report_id: str) -> None:
        (self.directory / f"{report_id}.json").unlink(missing_ok=True)

    def pending(self) -> list[dict[str, Any]]:
        """Every stored report, oldest first; unreadable leftovers are dropped, not retried forever."""
        reports = []
        for path in sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                reports.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                path.unlink(missing_ok=True)
        return reports

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json"))
