"""Relay items (tiếp sóng) in a schedule: planned like a file of their duration, carried by the contract."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mqtt_contract import Channel, InvalidMessage, validate
from mqtt_contract.times import isoformat
from speaker_agent.playout import AudioRef, Entry, Item, StreamRef, plan
from speaker_agent.playout.store import ScheduleStore, entry_from_message, entry_to_message

T0 = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 18:00 in Asia/Ho_Chi_Minh
VOV1 = StreamRef("https://live.example.vn/vov1/stream.mp3", 1800)
GREETING = AudioRef("http://10.20.0.5:8000/api/v1/audio/" + "ab" * 32, "ab" * 32, 80640, 5.04)
EVENING = Entry(
    "thoi-su-toi@20261124T1100Z",
    T0,
    "Thời sự tối",
    (Item("Lời chào", GREETING), Item("Tiếp sóng Thời sự VOV1", stream=VOV1), Item("Hết", GREETING)),
    on_interrupt="resume",
)


def schedule_command(entries: list[dict]) -> dict:
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "schedule",
        "issued_at": isoformat(T0 - timedelta(hours=1)),
        "expires_at": isoformat(T0 + timedelta(hours=47)),
        "schedule": {"version": 1, "window_end": isoformat(T0 + timedelta(hours=47)), "entries": entries},
    }


def test_a_relay_item_goes_through_the_contract_and_back_unchanged():
    message = entry_to_message(EVENING)
    relay = message["items"][1]
    assert relay == {
        "title": "Tiếp sóng Thời sự VOV1",
        "priority": "normal",
        "stream": {"url": VOV1.url, "duration_s": 1800},
    }
    validate(Channel.COMMAND, schedule_command([message]))
    assert entry_from_message(message) == EVENING


def test_the_stored_window_keeps_its_relay_items(tmp_path):
    store = ScheduleStore.load(tmp_path / "schedule.json")
    store.replace(1, T0 + timedelta(hours=48), [EVENING])
    again = ScheduleStore.load(tmp_path / "schedule.json")
    assert again.entries == [EVENING] and again.entries[0].items[1].audio is None


@pytest.mark.parametrize("member", ["both", "neither"])
def test_a_schedule_item_needs_exactly_one_of_audio_and_stream(member):
    message = entry_to_message(EVENING)
    bad = copy.deepcopy(message)
    if member == "both":
        bad["items"][1]["audio"] = message["items"][0]["audio"]
    else:
        del bad["items"][1]["stream"]
    with pytest.raises(InvalidMessage):
        validate(Channel.COMMAND, schedule_command([bad]))
    with pytest.raises(ValueError, match="exactly one of audio and stream"):
        Item("x", GREETING if member == "both" else None, stream=VOV1 if member == "both" else None)


def test_a_relay_item_is_planned_like_a_file_of_its_duration():
    plays = plan([EVENING], start=T0, end=T0 + timedelta(hours=2))
    assert [(p.audio, p.stream) for p in plays] == [(GREETING, None), (None, VOV1), (GREETING, None)]
    assert plays[1].start == T0 + timedelta(seconds=5.04) and plays[2].start == plays[1].start + timedelta(hours=0.5)
    assert EVENING.duration_s == pytest.approx(1800 + 2 * 5.04)
