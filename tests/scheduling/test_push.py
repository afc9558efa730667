"""Schedule windows pushed to clusters ahead of time, on SQLite and PostgreSQL, through a recording publisher.

The publisher is the port `push_schedules` talks to (the MQTT bus in production): here it records every
command and acknowledges all but the clusters it is told to refuse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import Cluster, ClusterSchedule
from broadcast_server.scheduling.preview import preview
from broadcast_server.scheduling.push import WINDOW, push_schedules
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from mqtt_contract import Channel, decode, encode, validate
from mqtt_contract.times import isoformat
from speaker_agent.playout import plan
from speaker_agent.playout.store import entry_from_message

from .conftest import LY_SON  # the `world` fixture's cluster of another district: its window stays empty

REFRESH_BEFORE_END = WINDOW / 2  # a window with less than half its length left is sent again

# Monday 2026-11-23, 07:00 in Vietnam: the window runs from 06:00 Monday to 07:00 Wednesday local time.
T1 = datetime(2026, 11, 23, 7, 0, tzinfo=LOCAL_TZ).astimezone(UTC)
COASTAL = ("Xã Bình Châu", "Xã Bình Hải", "Xã Bình Thạnh", "Xã Bình Đông", "Xã Bình Thuận")


class RecordingPublisher:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, dict]]] = []
        self.refuse: set[str] = set()

    def publish_commands(self, commands, *, timeout_s: float = 60.0) -> set[str]:
        batch = list(commands)
        self.batches.append(batch)
        return {command["id"] for cluster_id, command in batch if cluster_id not in self.refuse}

    @property
    def last(self) -> dict[str, dict]:
        return dict(self.batches[-1])


def push(engine, publisher, public_url, now):
    return push_schedules(engine, publisher, public_url, now)


def stored(engine) -> dict[str, ClusterSchedule]:
    with session_scope(engine) as session:
        return {c.cluster_id: c for c in session.exec(select(ClusterSchedule))}


def entry_ids(command: dict) -> list[str]:
    return [e["id"] for e in command["schedule"]["entries"]]


MONDAY_07_TO_WEDNESDAY_07 = [
    "thoi-tiet-ngay-thuong@20261123T0400Z",  # Mon 11:00 local (coastal only)
    "chieu-hang-ngay@20261123T1000Z",  # Mon 17:00
    "chuyen-doi-so-thu-hai@20261123T1015Z",  # Mon 17:15 (Mondays only)
    "sang-hang-ngay@20261123T2230Z",  # Tue 05:30
    "thoi-tiet-ngay-thuong@20261124T0400Z",  # Tue 11:00 (coastal only)
    "chieu-hang-ngay@20261124T1000Z",  # Tue 17:00
    "sang-hang-ngay@20261124T2230Z",  # Wed 05:30
]


def test_first_push_sends_each_cluster_one_valid_window_and_a_second_sends_nothing(world, public_url, clusters_of):
    publisher = RecordingPublisher()
    with session_scope(world) as session:
        all_clusters = set(session.exec(select(Cluster.id)))
    assert len(all_clusters) == 145

    assert push(world, publisher, public_url, T1) == 145
    assert len(publisher.batches) == 1
    batch = publisher.batches[0]
    assert sorted(cluster for cluster, _ in batch) == sorted(all_clusters)  # each exactly once
    assert len({command["id"] for _, command in batch}) == 145
    coastal = set(clusters_of(*COASTAL))
    assert len(coastal) == 40
    window_end = isoformat(T1 + WINDOW)
    for cluster_id, command in batch:
        assert validate(Channel.COMMAND, command) is command
        assert decode(Channel.COMMAND, encode(Channel.COMMAND, command)) == command  # what the agent accepts
        assert command["type"] == "schedule" and command["issued_at"] == isoformat(T1)
        assert command["expires_at"] == command["schedule"]["window_end"] == window_end
        expected = [
            e
            for e in MONDAY_07_TO_WEDNESDAY_07
            if cluster_id != LY_SON and (cluster_id in coastal or not e.startswith("thoi-tiet"))
        ]
        assert entry_ids(command) == expected, cluster_id
    morning = next(
        e for e in publisher.last["binh-son-binh-hai-001"]["schedule"]["entries"] if e["id"].startswith("sang")
    )
    assert morning["start_at"] == "2026-11-23T22:30:00.000Z"
    assert [i["title"] for i in morning["items"]][1] == "Thông báo của UBND huyện"  # order as the programme has it
    assert all(i["audio"]["url"].startswith(f"{public_url}/api/v1/audio/") for i in morning["items"])

    rows = stored(world)
    assert set(rows) == all_clusters
    assert {(r.window_end, r.pushed_at) for r in rows.values()} == {(T1 + WINDOW, T1)}
    versions = {cluster_id: command["schedule"]["version"] for cluster_id, command in batch}
    assert {cluster_id: r.version for cluster_id, r in rows.items()} == versions

    assert push(world, publisher, public_url, T1) == 0
    assert len(publisher.batches) == 1  # nothing published at all
    # Three hours later the window holds the same airings (none between 06:00 and 09:00 Monday): still nothing.
    assert push(world, publisher, public_url, T1 + timedelta(hours=3)) == 0
    assert len(publisher.batches) == 1
    assert stored(world) == rows


def test_a_changed_slot_reaches_only_the_clusters_it_affects(world, apply, example_week, public_url, clusters_of):
    publisher = RecordingPublisher()
    push(world, publisher, public_url, T1)
    before = stored(world)

    apply(example_week.replace('start: "11:00"', 'start: "11:30"'))  # the coastal weather insert moves
    assert push(world, publisher, public_url, T1) == 40
    sent = publisher.last
    assert sorted(sent) == clusters_of(*COASTAL)
    for cluster_id, command in sent.items():
        assert command["schedule"]["version"] > before[cluster_id].version
        assert "thoi-tiet-ngay-thuong@20261123T0430Z" in entry_ids(command)
        assert "thoi-tiet-ngay-thuong@20261123T0400Z" not in entry_ids(command)
    after = stored(world)
    assert all(after[c].version > before[c].version for c in sent)
    assert all(after[c] == before[c] for c in after if c not in sent)

    # The Monday column now only for Bình Hải: every other Bình Sơn cluster loses it, Bình Hải keeps its window.
    apply(
        example_week.replace('start: "11:00"', 'start: "11:30"').replace(
            "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn]}",
            "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}",
        )
    )
    assert push(world, publisher, public_url, T1) == 139
    sent = publisher.last
    assert set(sent) == set(clusters_of("Bình Sơn")) - set(clusters_of("Xã Bình Hải"))
    assert all("chuyen-doi-so-thu-hai@20261123T1015Z" not in entry_ids(c) for c in sent.values())
    assert push(world, publisher, public_url, T1) == 0


def test_a_window_not_acknowledged_is_sent_again(world, public_url):
    publisher = RecordingPublisher()
    publisher.refuse = {"binh-son-binh-hai-001", LY_SON}
    assert push(world, publisher, public_url, T1) == 143
    assert "binh-son-binh-hai-001" not in stored(world) and LY_SON not in stored(world)

    publisher.refuse = set()
    assert push(world, publisher, public_url, T1 + timedelta(minutes=5)) == 2
    assert sorted(publisher.last) == sorted(["binh-son-binh-hai-001", LY_SON])
    assert entry_ids(publisher.last["binh-son-binh-hai-001"]) == MONDAY_07_TO_WEDNESDAY_07
    assert push(world, publisher, public_url, T1 + timedelta(minutes=10)) == 0


def test_a_window_is_sent_again_only_when_it_runs_short(world, public_url):
    """Windows do not follow the clock airing by airing (that would resend every cluster's window each time
    an airing enters it); they are sent again when less than half of them is left."""
    publisher = RecordingPublisher()
    push(world, publisher, public_url, T1)
    first = stored(world)[LY_SON]

    later = T1 + WINDOW - REFRESH_BEFORE_END - timedelta(hours=1)  # 25 h left of every window
    assert push(world, publisher, public_url, later) == 0

    short = T1 + WINDOW - REFRESH_BEFORE_END + timedelta(minutes=1)  # 23 h 59 min left
    assert push(world, publisher, public_url, short) == len(stored(world))
    command = publisher.last[LY_SON]
    assert command["schedule"]["window_end"] == command["expires_at"] == isoformat(short + WINDOW)
    assert command["schedule"]["entries"] == []
    assert command["schedule"]["version"] > first.version
    validate(Channel.COMMAND, command)
    assert stored(world)[LY_SON].window_end == short + WINDOW


def test_a_new_window_keeps_the_last_hours_airings(world, public_url):
    publisher = RecordingPublisher()
    morning = "sang-hang-ngay@20261122T2230Z"  # Monday 05:30 local
    playing = datetime(2026, 11, 22, 22, 30, 20, tzinfo=UTC)  # 20 s into the morning bulletin
    push(world, publisher, public_url, playing)
    command = publisher.last["binh-son-binh-hai-001"]
    assert entry_ids(command)[0] == morning
    # The agent, having played the first item, carries on with the rest of the programme from this window.
    entries = [entry_from_message(e) for e in command["schedule"]["entries"]]
    plays = plan(entries, start=playing, end=playing + timedelta(minutes=10), done={(morning, 0)})
    assert [(p.entry_id, p.title) for p in plays] == [
        (morning, "Lời chào buổi sáng"),
        (morning, "Tin nông nghiệp"),
    ]


def stored_command(publisher: RecordingPublisher, cluster_id: str, at: datetime) -> dict:
    """The last command sent to a cluster at or before `at` (a push sends nothing when nothing changed)."""
    for batch in reversed(publisher.batches):
        for cid, command in batch:
            if cid == cluster_id and command["issued_at"] <= isoformat(at):
                return command
    raise AssertionError(f"nothing sent to {cluster_id}")


def test_the_pushed_window_plays_as_the_preview_says(world, public_url):
    publisher = RecordingPublisher()
    push(world, publisher, public_url, T1)
    end = T1 + timedelta(hours=24)
    for cluster_id in ("binh-son-binh-hai-001", "binh-son-binh-trung-001", "binh-son-binh-thanh-001-2"):
        entries = [entry_from_message(e) for e in publisher.last[cluster_id]["schedule"]["entries"]]
        with session_scope(world) as session:
            expected = preview(session, public_url, [cluster_id], T1, end)[cluster_id]
        assert plan(entries, start=T1, end=end) == expected
        assert len(expected) >= 6


LONG_ID = "ban-tin-phong-chong-thien-tai-binh-hai-1"  # 40 characters: the longest slot id allowed
LONG_SLOT_FILE = f"""
version: 1
programmes:
  - id: thong-bao-xa
    title: Thông báo của xã
    items: [{{title: Thông báo, text: Xin chào bà con.}}]
slots:
  - id: {LONG_ID}
    programme: thong-bao-xa
    from: 2026-11-23
    start: "08:00"
    rule: FREQ=DAILY
    target: {{units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}}
"""


def test_a_long_slot_id_still_gives_valid_commands(world, apply, public_url):
    assert len(LONG_ID) == 40
    assert apply(LONG_SLOT_FILE).applied
    publisher = RecordingPublisher()
    push(world, publisher, public_url, T1)
    for _, command in publisher.batches[-1]:
        validate(Channel.COMMAND, command)


def test_a_slot_id_too_long_for_the_contract_is_refused_in_the_file():
    from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml

    with pytest.raises(ScheduleFileError) as error:
        parse_schedule_yaml(LONG_SLOT_FILE.replace(LONG_ID, LONG_ID + "-x"))
    assert any(p.startswith("slots[0].id") for p in error.value.problems)
