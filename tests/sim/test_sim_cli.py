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


RELAY_SCENARIO = """
seed: 3
seconds: 12
speed: 50
dispatch:
  - {at_s: 0.5, stream: "https://radio.example.vn/vov1.mp3", duration_s: 6}
stream_faults:
  - {stream: "https://radio.example.vn/vov1.mp3", clusters: [t-a-1]}                  # never reachable
  - {stream: "https://radio.example.vn/vov1.mp3", clusters: [t-a-2], drops_after_s: 3}  # drops once
"""


@pytest.mark.broker
def test_sim_run_relays_a_stream_with_the_faults_its_links_have(tmp_path):
    """A relay dispatched by the scenario: one cluster never reaches the stream, one loses it once."""
    (tmp_path / "fleet.csv").write_text(FLEET, encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(RELAY_SCENARIO, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "bcast", "sim", "run", "--fleet", str(tmp_path / "fleet.csv")]
        + ["--scenario", str(tmp_path / "scenario.yaml"), "--data-dir", str(tmp_path / "agents")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout)
    assert summary["reports"] == {"failed": 1, "played": 5}
    # Five clusters relayed it; the one whose stream dropped did so in two connections; no file was played.
    assert summary["clusters_played"] == 5 and summary["plays_relayed"] == 6 and summary["played_bad_hash"] == 0
    assert (summary["faults"]["stream_unreachable"], summary["faults"]["stream_dropping"]) == (1, 1)
    assert summary["faults"]["requests"] == 0  # nothing downloaded for a relay


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
        ({"dispatch": [{"at_s": 1, "stream": "rtsp://cam/1"}]}, "http"),
        ({"dispatch": [{"at_s": 1, "stream": "https://r.vn/a", "duration_s": 1.5}]}, "whole seconds"),
        ({"stream_faults": [{"clusters": ["x"]}]}, "stream is required"),
        ({"stream_faults": [{"stream": "https://r.vn/a", "drops_after_s": 0}]}, "more than 0"),
    ],
)
def test_a_bad_scenario_is_refused_with_the_reason(document, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(document)


def test_a_selection_naming_an_unknown_commune_is_refused():
    with pytest.raises(ScenarioError, match="commune"):
        Selection(communes=["Xã Không Có"]).pick([FleetMember("c-1", "Xã A")], __import__("random").Random(0))
