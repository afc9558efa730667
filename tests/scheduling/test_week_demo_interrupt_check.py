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
DURATIONS = {ITEM: 8.638}  # seconds of the item's audio


CUT_AT = T0 + timedelta(microseconds=822_000)  # the agent's stamp, in the 'stopped' report
SPEAKER_CUT_AT = CUT_AT + timedelta(milliseconds=5)  # the simulated speaker began after hashing the file


def stop(policy: str, played_s: float, started: datetime = CUT_AT) -> SimpleNamespace:
    return SimpleNamespace(
        cluster_id=CLUSTER,
        command_id=ITEM,
        started_at=started,
        played_s=played_s,
        reason=f"interrupted; on_interrupt={policy}",
    )


def played_report(started: datetime) -> SimpleNamespace:
    stored = started.replace(microsecond=started.microsecond // 1000 * 1000)  # reports carry milliseconds
    ended = stored + timedelta(seconds=5)
    return SimpleNamespace(cluster_id=CLUSTER, command_id=ITEM, started_at=stored, ended_at=ended)


def play(started: datetime, start_s: float, *, completed: bool = True, file: str = "a.audio") -> PlayRecord:
    return PlayRecord(CLUSTER, "chieu@20261123T1000Z", started, 1.0, completed, file=file, start_s=start_s)


# The alert came 0.8 s into the item: by the length aired, resume and restart are a jitter apart.
RESUMED_AT = T0 + timedelta(seconds=10, microseconds=26_722)
CUT = play(SPEAKER_CUT_AT, 0.0, completed=False)
NEXT_ITEM = play(RESUMED_AT + timedelta(seconds=5), 0.0, file="b.audio")  # the programme's next item


@pytest.mark.parametrize(
    "policy, began, expected",
    [
        ("resume", 0.8, True),
        ("resume", 0.0, False),  # said resume, played from the start
        ("resume", 0.3, False),  # resumed from the wrong place
        ("restart", 0.0, True),
        ("restart", 0.8, False),  # said restart, went on from the cut
    ],
)
def test_resume_and_restart_are_judged_by_where_the_speaker_began(policy, began, expected) -> None:
    truth = [NEXT_ITEM, play(RESUMED_AT, began), CUT]
    assert _handled_as_configured(stop(policy, 0.8), [played_report(RESUMED_AT)], truth, DURATIONS) is expected


def test_an_item_cut_twice_resumes_from_the_sum_of_what_played() -> None:
    first_resume = play(RESUMED_AT, 0.8, completed=False)  # the alert's repeat cut it again after 2.5 s
    second_cut = stop("resume", 2.5, RESUMED_AT - timedelta(milliseconds=4))
    final = play(RESUMED_AT + timedelta(seconds=30), 3.3)
    truth = [CUT, first_resume, final]
    report = [played_report(final.started_at)]
    assert _handled_as_configured(stop("resume", 0.8), report, truth, DURATIONS) is True
    assert _handled_as_configured(second_cut, report, truth, DURATIONS) is True
    wrong = [CUT, first_resume, play(final.started_at, 2.5)]  # forgot the first part
    assert _handled_as_configured(second_cut, [played_report(final.started_at)], wrong, DURATIONS) is False


def test_drop_means_no_played_report() -> None:
    assert _handled_as_configured(stop("drop", 0.8), [], [CUT, NEXT_ITEM], DURATIONS) is True
    assert _handled_as_configured(stop("drop", 0.8), [played_report(RESUMED_AT)], [CUT, NEXT_ITEM], DURATIONS) is False


def test_a_report_naming_no_cut_play_of_the_speaker_is_not_handled() -> None:
    report = [played_report(RESUMED_AT)]
    truth = [play(SPEAKER_CUT_AT, 0.0, completed=True), play(RESUMED_AT, 0.8)]  # the speaker was not cut
    assert _handled_as_configured(stop("resume", 0.8), report, truth, DURATIONS) is False
    far = [play(CUT_AT + timedelta(seconds=3), 0.0, completed=False), play(RESUMED_AT, 0.8)]
    assert _handled_as_configured(stop("resume", 0.8), report, far, DURATIONS) is False


def test_an_alert_landing_as_the_item_ends_resumes_at_its_end() -> None:
    # The agent's clock said 8.745 s had played of an 8.638 s file: the player clamps the offset to the end.
    resumed = play(RESUMED_AT, 8.638)
    assert _handled_as_configured(stop("resume", 8.745), [played_report(RESUMED_AT)], [CUT, resumed], DURATIONS)
    early = play(RESUMED_AT, 8.0)
    assert not _handled_as_configured(stop("resume", 8.745), [played_report(RESUMED_AT)], [CUT, early], DURATIONS)
