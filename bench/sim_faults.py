"""Fault injection at fleet scale: one `bcast sim run` over a generated fleet, with every kind of fault.

Run: .venv/bin/python bench/sim_faults.py [--clusters 2000] [--seed 1]

It writes a fleet CSV (communes of 100 clusters) and a scenario to a temporary folder, runs
`python -m bcast sim run --local-broker` on them, and prints the simulator's JSON summary with the
wall time of the whole run. It checks the ground truth, not speed: no corrupted file played, no
report left unsent, each broadcast reported by every cluster that was online.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = """
seed: {seed}
seconds: {seconds}
speed: 20
offline: {{fraction: 0.05}}
cutoffs:
  - {{communes: ["Xã Đảo 1"], at_s: 1, for_s: 8, mode: network}}
  - {{communes: ["Xã Đảo 2"], at_s: 1, for_s: 8, mode: power}}
corrupt_downloads: {{fraction: 0.05, responses: 2}}
truncated_downloads: {{fraction: 0.05, responses: 1}}
slow_link: {{fraction: 0.02, bytes_per_s: 50000}}
clock_skew: {{fraction: 0.01, offset_s: 900}}
amplifier_failure: {{fraction: 0.01}}
dispatch:
  - {{at_s: 2, expires_in_s: 4, duration_s: 10, size_bytes: 20000}}
  - {{at_s: 2.5, expires_in_s: 300, duration_s: 10, size_bytes: 40000}}
"""


def write_fleet(path: Path, clusters: int) -> None:
    lines = ["cluster_id,province,district,commune,village,lat,lon"]
    for i in range(clusters):
        commune = f"Xã Đảo {i // 100 + 1}"
        lines.append(f"sim-{i:05d},Tỉnh Thử,Huyện Thử,{commune},Thôn {i % 100 + 1},11.5,106.6")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        fleet, scenario = Path(tmp) / "fleet.csv", Path(tmp) / "scenario.yaml"
        write_fleet(fleet, args.clusters)
        scenario.write_text(SCENARIO.format(seed=args.seed, seconds=args.seconds), encoding="utf-8")
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "bcast", "sim", "run", "--fleet", str(fleet), "--scenario", str(scenario)]
            + ["--local-broker", "--data-dir", str(Path(tmp) / "agents")],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=args.seconds + 600,
        )
        wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(completed.stderr[-3000:])
    summary = json.loads(completed.stdout)
    summary.pop("scenario", None)
    summary.pop("events", None)
    summary["communes"] = summary["communes"][:3]
    summary["wall_s"] = round(wall, 1)
    print(json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
