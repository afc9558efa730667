"""The shared playout planner: priorities, layering, queuing, restart after a power cut."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from speaker_agent.playout import AudioRef, Entry, Item, find_conflicts, plan

T0 = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 05:30 in Asia/Ho_Chi_Minh


def item(title: str, seconds: float, priority: str = "normal") -> Item:
    return Item(title, AudioRef(f"http://h/{title}", f"{abs(hash(title)) % 16**64:064x}", 1, seconds), priority)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_priority_items_go_first_and_keep_programme_order():
    entry = Entry(
        "morning",
        T0,
        "Bản tin sáng",
        (item("a", 60), item("p1", 30, "priority"), item("b", 60), item("p2", 30, "priority")),
    )
    plays = plan([entry], start=T0, end=at(60))
    assert [p.title for p in plays] == ["p1", "p2", "a", "b"]
    assert plays[0].start == T0 and plays[-1].end == T0 + timedelta(seconds=180)
    assert all(a.end == b.start for a, b in itertools.pairwise(plays))


def test_insert_waits_for_the_item_boundary_then_background_resumes():
    background = Entry("music", T0, "Nền", (item("m1", 300), item("m2", 300)))
    insert = Entry("news", at(2), "Tin ngắn", (item("n", 60),), layer="insert")
    plays = plan([background, insert], start=T0, end=at(60))
    assert [(p.title, p.start) for p in plays] == [("m1", T0), ("n", at(5)), ("m2", at(6))]
    assert plays[1].delay_s == 180  # due at +2 min, went in when m1 ended at +5 min


def test_overlapping_backgrounds_are_queued_and_reported_as_conflicts():
    a = Entry("a", T0, "A", (item("a1", 600),))
    b = Entry("b", at(5), "B", (item("b1", 60),))
    plays = plan([a, b], start=T0, end=at(60))
    assert [(p.entry_id, p.start) for p in plays] == [("a", T0), ("b", at(10))]
    [conflict] = find_conflicts([a, b])
    assert (conflict.first, conflict.second, conflict.overlap_s) == ("a", "b", 300)
    assert "queued" in conflict.rule
    assert find_conflicts([a, Entry("c", at(10), "C", (item("c1", 5),))]) == []


def test_restart_skips_what_was_played_and_idles_until_the_next_entry():
    entry = Entry("e", T0, "E", (item("x", 60), item("y", 60)))
    later = Entry("l", at(30), "L", (item("z", 10),))
    plays = plan([entry, later], start=at(1), end=at(60), done=[("e", 0)])
    assert [(p.title, p.start) for p in plays] == [("y", at(1)), ("z", at(30))]


def test_window_end_cuts_the_plan_not_an_item():
    entry = Entry("e", T0, "E", (item("x", 600), item("y", 600)))
    assert [p.title for p in plan([entry], start=T0, end=at(5))] == ["x"]


entries_strategy = st.lists(
    st.builds(
        lambda n, start, durations, layer, prio: Entry(
            f"e{n}",
            at(start),
            f"E{n}",
            tuple(item(f"e{n}-{k}", d, "priority" if (k in prio) else "normal") for k, d in enumerate(durations)),
            layer=layer,
        ),
        st.integers(0, 10_000),
        st.integers(0, 600),
        st.lists(st.integers(1, 900), min_size=1, max_size=5),
        st.sampled_from(["background", "insert"]),
        st.sets(st.integers(0, 4)),
    ),
    max_size=8,
    unique_by=lambda e: e.id,
)


@settings(max_examples=200, deadline=None)
@given(entries_strategy)
def test_plan_invariants(entries):
    plays = plan(entries, start=T0, end=at(24 * 60))
    keys = [p.key for p in plays]
    assert len(keys) == len(set(keys))  # nothing plays twice
    assert len(plays) == sum(len(e.items) for e in entries)  # a day is long enough for everything
    for a, b in itertools.pairwise(plays):
        assert a.end <= b.start  # one channel: no overlap
    for p in plays:
        assert p.start >= p.due  # nothing before its time
    for entry in entries:  # priority first within each entry
        priority_of = {i.title: i.priority for i in entry.items}
        priorities = [priority_of[p.title] for p in plays if p.entry_id == entry.id]
        assert priorities == sorted(priorities, key=lambda x: 0 if x == "priority" else 1)
