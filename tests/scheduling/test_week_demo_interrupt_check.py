"""The week demo's judge of an interrupted item: resume, restart and drop told apart by where the speaker began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bcast.schedule_demo import _handled_as_configured
from speaker_agent.player import PlayRecord

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CLUSTER = "binh-son-binh-hai-001"
ITEM = "chieu@20261123T1000Z#0"


def stop(policy: str, played_s: float) -> SimpleNamespace:
    return SimpleNamespace(
        cluster_id=CLUSTER, command_id=ITEM, played_s=played_s, reason=f"interrupted; on_interrupt={policy}"
    )


def played_report(started: datetime, seconds: float) -> SimpleNamespace:
    # As SQLite gives it back: naive UTC, to the millisecond.
    naive = started.replace(tzinfo=None, microsecond=started.microsecond // 1000 * 1000)
    return SimpleNamespace(
        cluster_id=CLUSTER, command_id=ITEM, started_at=naive, ended_at=naive + timedelta(seconds=seconds)
    )


def truth(started: datetime, start_s: float) -> PlayRecord:
    return PlayRecord(CLUSTER, "chieu@20261123T1000Z", started, 60.0 - start_s, True, start_s=start_s)


# The alert came 0.8 s into a 60 s item: by length aired, resume (59.2 s) and restart (60 s) are a jitter apart.
RESUMED_AT = T0 + timedelta(seconds=40, microseconds=123_456)


@pytest.mark.parametrize(
    "policy, began, expected",
    [
        ("resume", 0.8, True),
        ("resume", 0.0, False),  # said resume, played from the start
        ("restart", 0.0, True),
        ("restart", 0.8, False),  # said restart, went on from the cut
    ],
)
def test_resume_and_restart_are_judged_by_where_the_speaker_began(policy, began, expected) -> None:
    record = truth(RESUMED_AT, began)
    report = played_report(RESUMED_AT, record.played_s)
    assert _handled_as_configured(stop(policy, 0.8), [report], [record]) is expected


def test_drop_means_never_played_again() -> None:
    assert _handled_as_configured(stop("drop", 0.8), [], []) is True
    report = played_report(RESUMED_AT, 60.0)
    assert _handled_as_configured(stop("drop", 0.8), [report], [truth(RESUMED_AT, 0.0)]) is False


def test_a_report_with_no_matching_play_on_the_speaker_is_not_handled() -> None:
    report = played_report(RESUMED_AT, 59.2)
    elsewhere = truth(RESUMED_AT + timedelta(seconds=5), 0.8)  # the speaker played it at another time
    assert _handled_as_configured(stop("resume", 0.8), [report], [elsewhere]) is False
