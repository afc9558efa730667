"""`bcast sim run` with a scenario file: faults chosen from the seed, and a JSON summary of the ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.scenario import FleetMember, ScenarioError, Selection, parse_scenario

ROOT = Path(__file__).resolve().parents[2]

FLEET = """cluster_id,province,district,commune,village,lat,lon
t-a-1,Bình Phước,Hớn Quản,Xã An Phú,Thôn 1,11.5,106.6
t-a-2,Bình Phước,Hớn Quản,Xã An Phú,Thôn 2,11.5,106.6
t-a-3,Bình Phước,Hớn Quản,Xã An Phú,Thôn 3,11.5,106.6
t-b-1,Bình Phước,Hớn Quản,Xã Tân Hưng,Thôn 1,11.6,106.6
t-b-2,Bình Phước,Hớn Quản,Xã Tân Hưng,Thôn 2,11.6,106.6
t-b-3,Bình Phước,Hớn Quản,Xã Tân Hưng,Thôn 3,11.6,106.6
"""

SCENARIO = """
seed: 11
seconds: 12
speed: 50
offline: {clusters: [t-b-3]}
amplifier_failure: {clusters: [t-a-1]}
clock_skew: {clusters: [t-a-2], offset_s: 600}   # its clock says every command expired long ago
broker_restarts: [{at_s: 2, down_s: 0.5}]
dispatch:
  - {at_s: 0.5, expires_in_s: 120, duration_s: 5, size_bytes: 5000}
  - {at_s: 9, expires_in_s: 120, duration_s: 5, size_bytes: 5000}    # after the restart
"""


@pytest.mark.broker
def test_sim_run_with_a_scenario_prints_what_the_agents_really_did(tmp_path):
    (tmp_path / "fleet.csv").write_text(FLEET, encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bcast",
            "sim",
            "run",
            "--fleet",
            str(tmp_path / "fleet.csv"),
            "--scenario",
            str(tmp_path / "scenario.yaml"),
            "--data-dir",
            str(tmp_path / "agents"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout)
    assert (summary["clusters"], summary["online"], summary["offline"]) == (6, 5, 1)
    # Two broadcasts to five clusters online: the amplifier fault fails both, the skewed clock misses
    # both, the other three play both, including the one sent after the broker restart.
    assert summary["reports"] == {"failed": 2, "missed": 2, "played": 6}
    assert summary["plays_completed"] == 6 and summary["clusters_played"] == 3
    assert summary["played_bad_hash"] == 0 and summary["reports_unsent"] == 0
    assert summary["faults"]["broker_restarts"] == 1
    assert summary["faults"]["amplifier_failed"] == 1 and summary["faults"]["clock_skewed"] == 1
    assert {c["name"]: (c["clusters"], c["offline"], c["played"]) for c in summary["communes"]} == {
        "Xã An Phú": (3, 0, 1),
        "Xã Tân Hưng": (3, 1, 2),
    }
    assert [e["event"] for e in summary["events"]].count("dispatch") == 2


def test_faults_are_chosen_from_the_seed_alone():
    members = [FleetMember(f"c-{i:03d}", f"commune-{i % 7}") for i in range(300)]
    document = {
        "seed": 4,
        "offline": {"fraction": 0.1},
        "cutoffs": [{"communes": ["commune-3"], "count": 5, "at_s": 1, "for_s": 2, "mode": "power"}],
    }
    first, again, other = parse_scenario(document), parse_scenario(document), parse_scenario({**document, "seed": 5})
    pick = [s.offline.pick(members, s.rng("offline")) for s in (first, again, other)]
    assert len(pick[0]) == 30 and pick[0] == pick[1] and pick[0] != pick[2]
    cut = first.cutoffs[0].select.pick(members, first.rng("cutoff0"))
    assert {m.cluster_id for m in members if m.commune == "commune-3"} <= cut
    assert len(cut) <= 43 + 5


@pytest.mark.parametrize(
    "document, message",
    [
        ({"offline": {"fraction": 2}}, "fraction"),
        ({"cutoffs": [{"communes": ["x"], "at_s": 1, "for_s": 1, "mode": "flood"}]}, "mode"),
        ({"dispatch": [{"at_s": 1, "priority": "loud"}]}, "priority"),
        ({"slow_link": {"fraction": 0.1}}, "bytes_per_s"),
        ({"storm": True}, "unknown"),
    ],
)
def test_a_bad_scenario_is_refused_with_the_reason(document, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(document)


def test_a_selection_naming_an_unknown_commune_is_refused():
    with pytest.raises(ScenarioError, match="commune"):
        Selection(communes=["Xã Không Có"]).pick([FleetMember("c-1", "Xã A")], __import__("random").Random(0))
