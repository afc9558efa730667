"""Issue 5 acceptance on real parts: a simulated day of the example schedule on the Bình Sơn fleet.

Every slot plays once on every online cluster and matches the preview; an emergency at a random
moment reaches every online cluster; a commune cut off plays from its stored window and its reports
arrive when it is back; the statistics count every scheduled item as the speakers played it. Timing
figures (lateness, emergency latency) are printed, not asserted: this machine is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def cut_size(document: dict) -> int:
    """Clusters cut off when the alert went out play it later, when nothing else may be playing."""
    return document["emergency"]["clusters_cut_off_at_the_time"]


def test_one_day_of_the_example_schedule_with_an_emergency_and_a_commune_cut(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bcast",
            "demo",
            "--fleet",
            str(ROOT / "bcast" / "data" / "binh-son.csv"),
            "--schedule",
            str(ROOT / "schedules" / "example-week.yaml"),
            "--days",
            "1",
            "--cut-commune",
            "Xã Bình Hải",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[:4000] + completed.stderr[-3000:] + completed.stdout[-2000:]
    document = json.loads(completed.stdout)
    print(json.dumps(document, ensure_ascii=False))
    assert document["online"] == 144
    assert document["slots_expected"] > 144 * 3  # morning, evening and Monday's column, plus the coastal insert
    assert document["slots_played"] == document["slots_expected"]
    assert document["duplicates"] == 0
    # The statistics count every scheduled item as the speakers played it (the column too, by its category).
    scheduled = document["scheduled_statistics"]
    assert scheduled["report"] == scheduled["ground_truth"]
    assert sum(c["bulletins_played"] for c in scheduled["report"].values()) >= 22 * 3  # each commune aired
    emergency = document["emergency"]
    assert emergency["clusters_started"] == document["online"]
    # The alert lands early in an item every cluster plays: each cut item then follows its programme's
    # on_interrupt rule (restart, resume or drop), checked against the reports.
    # The demo waits until every reachable cluster is on air, but not past 60 % of the item: on a loaded
    # machine a few start so late that the alert finds them between items. Most must be cut.
    on_air = emergency["clusters_on_air_when_sent"]
    assert sum(emergency["interrupted"].values()) >= (document["online"] - cut_size(document)) / 2, f"{on_air} on air"
    assert emergency["interrupted_handled_as_configured"] == sum(emergency["interrupted"].values())
    # Sent as a storm warning is: repeated (the agents do the repeats themselves) at a forced full level.
    assert emergency["clusters_played_every_repeat"] == document["online"]
    assert emergency["plays_at_forced_volume"] == emergency["plays"] >= 2 * document["online"]
    cut = document["cut"]
    assert cut["clusters"] == 5 and cut["expected_while_cut"] > 0
    assert cut["items_played_while_cut"] == cut["expected_while_cut"]  # played from disk, no network
    assert cut["reports_received_after_cut"] == cut["items_played_while_cut"]  # and reported once back
