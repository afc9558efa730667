"""The slot page's pure parts: repetition in words, next airings, state, who sees a slot."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.scheduling.slot_reach import SlotReach, slot_visible
from broadcast_server.scheduling.slot_words import (
    ACTIVE,
    CANCELLED,
    ENDED,
    next_airings,
    places_of,
    repetition_vi,
    slot_state,
)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (None, "Một lần"),
        ("FREQ=DAILY", "Hằng ngày"),
        ("FREQ=WEEKLY;BYDAY=TH,MO", "Hằng tuần: Thứ Hai, Thứ Năm"),
        ("FREQ=WEEKLY;BYDAY=SU", "Hằng tuần: Chủ nhật"),
        ("FREQ=WEEKLY", "Hằng tuần"),
        ("FREQ=MONTHLY;BYMONTHDAY=1", "Theo quy tắc FREQ=MONTHLY;BYMONTHDAY=1"),
        ("FREQ=DAILY;INTERVAL=2", "Theo quy tắc FREQ=DAILY;INTERVAL=2"),
    ],
)
def test_repetition_in_words(rule, words) -> None:
    assert repetition_vi(rule) == words


def test_next_airings_stop_at_the_last_day() -> None:
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # Monday 08:00 local
    weekly = next_airings("FREQ=WEEKLY;BYDAY=MO,TH", date(2026, 11, 23), time(17, 15), None, now)
    assert [a.astimezone(LOCAL_TZ).strftime("%a %d/%m %H:%M") for a in weekly] == [
        "Mon 07/12 17:15",
        "Thu 10/12 17:15",
        "Mon 14/12 17:15",
        "Thu 17/12 17:15",
        "Mon 21/12 17:15",
    ]
    short = next_airings("FREQ=WEEKLY;BYDAY=MO,TH", date(2026, 11, 23), time(17, 15), date(2026, 12, 10), now)
    assert len(short) == 2  # until is the last local day, included
    assert next_airings(None, date(2026, 12, 1), time(7, 0), None, now) == []  # once, already past
    assert next_airings("FREQ=DAILY", date(2026, 11, 1), time(7, 0), date(2026, 12, 6), now) == []


def test_state() -> None:
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    past = datetime(2026, 12, 1, 7, 0, tzinfo=LOCAL_TZ)
    future = datetime(2026, 12, 9, 7, 0, tzinfo=LOCAL_TZ)
    assert slot_state(None, past, None, False, now) == ENDED
    assert slot_state(None, future, None, False, now) == ACTIVE
    assert slot_state("FREQ=DAILY", past, None, False, now) == ACTIVE
    assert slot_state("FREQ=DAILY", past, date(2026, 12, 6), False, now) == ENDED
    assert slot_state("FREQ=DAILY", past, date(2026, 12, 7), False, now) == ACTIVE  # its last day is today
    assert slot_state("FREQ=DAILY", future, None, True, now) == CANCELLED


def test_who_sees_a_slot() -> None:
    district_wide = SlotReach(unit_ids=(1,), cluster_ids=(), reached=frozenset({"a1", "b1"}))
    commune_a = SlotReach(unit_ids=(2,), cluster_ids=(), reached=frozenset({"a1"}))
    empty_commune_a = SlotReach(unit_ids=(2,), cluster_ids=(), reached=frozenset())  # no cluster there yet
    forgotten = SlotReach(unit_ids=(), cluster_ids=(), reached=frozenset())  # names only units since merged away
    everyone = (None, None)
    in_a = ({2, 20}, {"a1"})
    in_b = ({3, 30}, {"b1"})
    assert all(slot_visible(r, *everyone) for r in (district_wide, commune_a, empty_commune_a, forgotten))
    assert slot_visible(district_wide, *in_a) and slot_visible(district_wide, *in_b)
    assert slot_visible(commune_a, *in_a) and not slot_visible(commune_a, *in_b)
    assert slot_visible(empty_commune_a, *in_a) and not slot_visible(empty_commune_a, *in_b)
    assert not slot_visible(forgotten, *in_a)


def test_places_in_a_few_words() -> None:
    assert places_of(("Quảng Ngãi/Bình Sơn/Xã Bình Hải",), ("ven-bien",), ("c-1",)) == (
        "Xã Bình Hải",
        "nhóm ven-bien",
        "cụm loa c-1",
    )
