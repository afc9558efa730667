"""The publish-window benchmark runs on a few commands, and every command it publishes is acknowledged."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]


def test_small_run_publishes_and_reports_each_figure() -> None:
    from bench.publish_window import run

    result = run(300, 1)  # one_round and bare_round raise unless the broker acknowledged every message
    assert result["commands"] == 300
    for key in ("cpu_s_no_window", "cpu_s_window_1000", "bare_paho_cpu_s_no_window", "bare_paho_cpu_s_window_1000"):
        assert result[key] > 0, key
    assert len(result["cpu_s_all_rounds"]["no_window"]) == 1
