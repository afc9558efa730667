"""The ingest-stages benchmark runs on a small burst: every message decoded and stored, none refused."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_message_of_a_small_burst_is_decoded_and_stored(database: str, request) -> None:
    from bench.ingest_stages import run

    if database == "postgres":
        request.getfixturevalue("postgres_admin_url")  # skipped when PostgreSQL is not there
    result = run(2_000, database)  # one message in five is a report (bench.ingest's mix)
    assert (result["rejected"], result["stored_heartbeats"], result["stored_reports"]) == (0, 1_600, 400)
    for figure in ("decode_us_per_msg", "json_loads_us_per_msg", "store_us_per_msg", "raw_heartbeat_insert_us_per_row"):
        assert result[figure] > 0
