"""Schedule files and recurrence rules: what a district writes, checked before anything is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from broadcast_server.scheduling.recurrence import InvalidRule, check_rule, occurrences
from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "schedules" / "example-week.yaml"


def test_the_shipped_example_week_parses():
    spec = parse_schedule_yaml(EXAMPLE.read_text(encoding="utf-8"))
    assert {s.id for s in spec.slots} == {
        "sang-hang-ngay",
        "chieu-hang-ngay",
        "chuyen-doi-so-thu-hai",
        "thoi-tiet-ngay-thuong",
    }
    weekly = next(s for s in spec.slots if s.id == "chuyen-doi-so-thu-hai")
    assert weekly.start_time == time(17, 15) and weekly.rule == "FREQ=WEEKLY;BYDAY=MO"
    assert next(p for p in spec.programmes if p.id == "ban-tin-sang").items[1].priority == "priority"


def test_rules_are_evaluated_in_local_time_and_returned_in_utc():
    # 05:30 in Vietnam is 22:30 UTC the day before: the danger is mixing UTC and local dates.
    got = occurrences(
        "FREQ=WEEKLY;BYDAY=MO",
        datetime(2026, 11, 23, 5, 30),
        datetime(2026, 11, 22, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert got == [datetime(2026, 11, 22, 22, 30, tzinfo=UTC), datetime(2026, 11, 29, 22, 30, tzinfo=UTC)]
    weekdays = occurrences(
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        datetime(2026, 11, 23, 11, 0),
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert [d.astimezone().weekday() for d in weekdays] == [0, 1, 2, 3, 4]
    once = occurrences(
        None, datetime(2026, 11, 23, 8, 0), datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert once == [datetime(2026, 11, 23, 1, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=BOGUS",
        "BYDAY=MO",
        "RRULE:FREQ=DAILY",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=MINUTELY",
        "FREQ=DAILY\nFREQ=WEEKLY",
    ],
)
def test_invalid_rules_are_refused(rule):
    with pytest.raises(InvalidRule):
        check_rule(rule)


BASE = """
version: 1
programmes:
  - id: p
    title: P
    items: [{title: T, text: Xin chào}]
slots:
  - id: s
    programme: p
    from: 2026-11-23
    start: "05:30"
    rule: FREQ=DAILY
    target: {units: [Quảng Ngãi/Bình Sơn]}
"""


VIETNAMESE_LETTERS = re.compile("[àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ]", re.I)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("rule: FREQ=DAILY", "rule: FREQ=DAYLY", "slots[0].rule"),
        ('start: "05:30"', 'start: "25:30"', "slots[0].start"),
        ("programme: p\n", "programme: q\n", "slots[0].programme"),
        ("target: {units: [Quảng Ngãi/Bình Sơn]}", "target: {}", "slots[0].target"),
        ("{title: T, text: Xin chào}", "{title: T}", "programmes[0].items[0]"),
        ("{title: T, text: Xin chào}", "{title: T, text: x, priority: emergency}", "programmes[0].items[0].priority"),
        ("from: 2026-11-23", "from: 23/11/2026", "slots[0].from"),
        ("id: s\n", "id: Sáng\n", "slots[0].id"),
        ("version: 1", "version: 2", "version"),
    ],
)
def test_each_problem_names_its_place(old, new, where):
    assert old in BASE
    with pytest.raises(ScheduleFileError) as error:
        parse_schedule_yaml(BASE.replace(old, new, 1))
    assert any(p.startswith(where) for p in error.value.problems), error.value.problems
    # The same problems in English for the API, at the same places, with no Vietnamese outside quoted values.
    english = error.value.problems_en
    assert [p.split(": ", 1)[0] for p in english] == [p.split(": ", 1)[0] for p in error.value.problems]
    for text in english:
        unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", text)
        assert not VIETNAMESE_LETTERS.search(unquoted), text


def test_not_yaml_and_unknown_groups_are_refused():
    with pytest.raises(ScheduleFileError):
        parse_schedule_yaml("version: 1\nslots: [")
    with pytest.raises(ScheduleFileError) as error:
        parse_schedule_yaml(BASE.replace("{units: [Quảng Ngãi/Bình Sơn]}", "{groups: [ven-bien]}"))
    assert "slots[0].target.groups: không có nhóm 'ven-bien'" in error.value.problems
    assert str(error.value) == "slots[0].target.groups: no group 'ven-bien'"  # what a log or a traceback shows
