"""The schedule-push benchmark runs end to end on a small fleet and counts what it recorded."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(600)


def test_small_push_records_every_clusters_airings() -> None:
    from bench.schedule_push import run

    result = run(88, "sqlite")  # 4 clusters in each of the 22 communes
    for push in ("push_recording_first", "push_baseline_no_recording", "push_recording_again"):
        assert result[push]["windows"] == 88
    assert result["push_baseline_no_recording"]["recording_s"] == 0.0
    assert result["push_recording_first"]["recording_s"] > 0
    # Every cluster gets the district-wide airings; the 5 coastal communes' 20 clusters get the weather too,
    # at 11:00 on Monday and on Tuesday (the window runs from 06:00 Monday to 07:00 Wednesday).
    coastal = 2
    assert result["target_rows"] == 88 * (result["airings_in_window"] - coastal) + 20 * coastal
