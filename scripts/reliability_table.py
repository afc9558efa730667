"""Render the fault table of docs/reliability.md from the rows tests/reliability wrote (one JSON file per fault).

python scripts/reliability_table.py [build/reliability]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ["broker_restart", "server_kill", "replica_kill", "database_outage", "disk_full", "power_loss_download"]


def _seconds(p50: float | None, worst: float | None) -> str:
    return "–" if p50 is None else f"{p50:.2f} / {worst:.2f}"


def render(folder: Path) -> str:
    rows = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    rows.sort(key=lambda r: (ORDER.index(r["key"]) if r["key"] in ORDER else len(ORDER), r["key"]))
    lines = [
        "| Fault | Injected | Reports made | Reports lost | Plays expected | Plays missing | Duplicate plays "
        "| Recover p50 / max (s) | Settled p50 / max (s) | Mechanism |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['injected']} | {r['reports_made']} | {r['reports_lost']} | {r['plays_expected']} "
            f"| {r['plays_missing']} | {r['duplicate_plays']} | {_seconds(r['recover_s_p50'], r['recover_s_max'])} "
            f"| {_seconds(r['settle_s_p50'], r['settle_s_max'])} | {r['mechanism']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path("build/reliability")
    if not any(folder.glob("*.json")):
        print(f"no fault rows in {folder}: run the tests of tests/reliability first", file=sys.stderr)
        return 1
    sys.stdout.write(render(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
