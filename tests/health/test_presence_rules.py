"""Presence rules, timelines and the deadline heap: pure code, tested without a database or a clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast_server.health.deadlines import DeadlineHeap
from broadcast_server.health.presence_rules import PresenceState, on_heartbeat, on_status, on_timeout
from broadcast_server.health.presence_timeline import Transition, online_since, state_at, summarize

NEW = PresenceState(False, 0, None)


def causes(outcome):
    return [(c.online, c.cause, c.seq) for c in outcome[1]]


def test_online_then_will_then_stale_will_of_an_older_connection():
    state, changes = on_status(NEW, "online", 1, has_ts=True)
    assert state == PresenceState(True, 1, "status") and [c.cause for c in changes] == ["status"]
    state, changes = on_status(state, "offline", 1, has_ts=False)
    assert state == PresenceState(False, 1, "will") and [c.cause for c in changes] == ["will"]
    state, _ = on_status(state, "online", 2, has_ts=True)
    assert on_status(state, "offline", 1, has_ts=False) is None  # the old will, delivered late
    state, changes = on_status(state, "offline", 2, has_ts=True)
    assert state.cause == "clean" and [c.cause for c in changes] == ["clean"]


def test_retained_online_redelivered_changes_nothing_but_cannot_revive_a_silent_connection():
    online = PresenceState(True, 5, "status")
    assert on_status(online, "online", 5, has_ts=True) == (online, ())
    timed_out, changes = on_timeout(online)
    assert timed_out == PresenceState(False, 5, "heartbeat_timeout") and causes((timed_out, changes)) == [
        (False, "heartbeat_timeout", 5)
    ]
    # The server resubscribes and gets the retained 'online' of that same, silent connection: still offline.
    assert on_status(timed_out, "online", 5, has_ts=True) is None
    # Its heartbeats coming back do revive it.
    back = on_heartbeat(timed_out, 5)
    assert back[0] == PresenceState(True, 5, "heartbeat") and causes(back) == [(True, "heartbeat", 5)]


def test_heartbeats_of_a_dead_or_older_connection_do_not_revive():
    dead = PresenceState(False, 3, "will")
    assert on_heartbeat(dead, 3) == (dead, ())
    assert on_heartbeat(dead, 2) is None
    newer = on_heartbeat(dead, 4)
    assert newer[0].online and newer[0].seq == 4


def test_a_newer_connection_seen_while_online_is_a_drop():
    online = PresenceState(True, 1, "status")
    assert causes(on_status(online, "online", 2, has_ts=True)) == [(False, "reconnect", 1), (True, "status", 2)]
    assert causes(on_heartbeat(online, 2)) == [(False, "reconnect", 1), (True, "heartbeat", 2)]


def test_offline_while_offline_records_nothing_but_learns_the_cause():
    timed_out = PresenceState(False, 7, "heartbeat_timeout")
    after, changes = on_status(timed_out, "offline", 7, has_ts=False)
    assert changes == () and after.cause == "will"
    assert on_heartbeat(after, 7) == (after, ())  # now known dead


T0 = datetime(2026, 10, 1, tzinfo=UTC)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_summary_counts_online_time_and_drops_inside_the_window_only():
    events = [
        Transition(t(-30), False),  # before the window: ignored
        Transition(t(10), True),
        Transition(t(20), False),
        Transition(t(20), True),  # a reconnect: one drop, no time lost
        Transition(t(40), False),
        Transition(t(50), True),
        Transition(t(70), False),  # after the window
    ]
    summary = summarize(False, events, t(0), t(60))
    assert summary.online_s == (10 + 20 + 10) * 60
    assert summary.drops == 2
    assert summary.online_at_end is True
    assert summary.uptime == pytest.approx(40 / 60)
    assert summarize(True, [], t(0), t(60)).uptime == 1.0
    assert summarize(True, [], t(60), t(0)).length_s == 0.0
    assert state_at(events, t(45)) is False and state_at(events, t(55)) is True
    assert online_since(events[:-1], True) == t(50)


@given(st.lists(st.tuples(st.integers(0, 1000), st.booleans()), max_size=30), st.booleans())
def test_online_and_offline_time_add_up_to_the_window(raw, initial):
    events = [Transition(t(m), online) for m, online in sorted(raw, key=lambda e: e[0])]
    up = summarize(initial, events, t(0), t(1000))
    inverted = summarize(not initial, [Transition(e.at, not e.online) for e in events], t(0), t(1000))
    assert up.online_s + inverted.online_s == pytest.approx(1000 * 60)


def test_deadline_heap_fires_each_key_at_its_latest_deadline_once():
    heap = DeadlineHeap()
    heap.set("a", 10)
    heap.set("b", 5)
    heap.set("a", 30)  # a heartbeat moved a's deadline
    heap.set("c", 20)
    heap.discard("c")  # c went offline by its will
    assert heap.next_time() == 5
    assert heap.pop_due(9) == ["b"]
    assert heap.next_time() == 30  # a's stale entry at 10 is skipped
    assert heap.pop_due(29) == []
    heap.set("a", 12)  # moved earlier again
    assert heap.pop_due(12) == ["a"]
    assert heap.pop_due(100) == [] and len(heap) == 0


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 100), st.booleans()), max_size=60))
def test_deadline_heap_matches_a_plain_dict(operations):
    heap, model = DeadlineHeap(), {}
    now = 0
    for key, when, remove in operations:
        if remove:
            heap.discard(key)
            model.pop(key, None)
        else:
            heap.set(key, now + when)
            model[key] = now + when
        now += random.Random(when).randint(0, 30)
        due = sorted(k for k, w in model.items() if w <= now)
        assert sorted(heap.pop_due(now)) == due
        for k in due:
            del model[k]
        assert heap.next_time() == (min(model.values()) if model else None)
