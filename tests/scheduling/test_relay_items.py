"""Live relays (tiếp sóng) in schedule files: `stream:` + `minutes:` items, on SQLite and PostgreSQL.

A commune relays the VOV news every day at 18:00: the item is stored as an approved relay bulletin, the
clusters' windows carry it as a `stream` item with its address and length, a changed address or length is
pushed again, the export reads back to no change, the planner counts its length, and a bad item is refused
at its place in both languages with nothing stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from broadcast_server.db.session import session_scope
from broadcast_server.models import Bulletin, Programme, ProgrammeItem, ScheduledAiring, Slot
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.preview import preview
from broadcast_server.scheduling.push import push_schedules
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml
from mqtt_contract import Channel, decode, encode, validate

from .test_push import RecordingPublisher

VOV = "https://radio.example.vn:8000/vov1.mp3"
HAI = "Quảng Ngãi/Bình Sơn/Xã Bình Hải"
# Monday 2026-11-23, 07:00 local: the window holds Monday's and Tuesday's 18:00 relays.
MONDAY_0700 = datetime(2026, 11, 23, 7, 0, tzinfo=LOCAL_TZ).astimezone(UTC)

RELAY_FILE = f"""
version: 1
programmes:
  - id: thoi-su-vov
    title: Tiếp sóng thời sự VOV1
    items:
      - title: Thời sự 18 giờ
        stream: {VOV}
        minutes: 30
        category: Thời sự
slots:
  - id: vov-18-gio
    programme: thoi-su-vov
    from: 2026-11-23
    start: "18:00"
    rule: FREQ=DAILY
    target: {{units: [{HAI}]}}
"""

# A text programme at 18:10 on the same commune: inside the 30-minute relay.
AT_1810 = f"""
  - id: thong-bao-18-10
    programme: thong-bao
    from: 2026-11-23
    start: "18:10"
    rule: FREQ=DAILY
    target: {{units: [{HAI}]}}
"""
NOTICE = """
  - id: thong-bao
    title: Thông báo của xã
    items:
      - title: Lịch tiêm chủng
        text: Trạm y tế xã thông báo lịch tiêm chủng.
"""


def _with_notice(text: str) -> str:
    return text.replace("slots:\n", NOTICE + "slots:\n").rstrip("\n") + AT_1810


def _rows(engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {
            model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Programme, ProgrammeItem, Slot, Bulletin)
        }


def _stream_items(command: dict) -> list[tuple[str, dict]]:
    return [(e["id"], i) for e in command["schedule"]["entries"] for i in e["items"] if "stream" in i]


def test_a_stream_item_is_an_approved_relay_pushed_as_a_stream(apply, fleet, public_url, clusters_of) -> None:
    result = apply(RELAY_FILE)
    assert result.applied and (result.created, result.updated) == (2, 0)
    with session_scope(fleet) as session:
        item = session.exec(select(ProgrammeItem)).one()
        relay = session.get(Bulletin, item.bulletin_id)
        assert (relay.kind, relay.status, relay.title, relay.category) == (
            "relay",
            "approved",
            "Thời sự 18 giờ",
            "Thời sự",
        )
        assert (relay.stream_url, relay.relay_duration_s, relay.audio_asset_id) == (VOV, 1800, None)
        assert (item.names_bulletin, item.source) == (False, None)
        relay_id = relay.id

    publisher = RecordingPublisher()
    push_schedules(fleet, publisher, public_url, MONDAY_0700)
    sent = publisher.last
    hai = clusters_of("Xã Bình Hải")
    for cluster_id, command in sent.items():
        assert validate(Channel.COMMAND, command) is command
        assert decode(Channel.COMMAND, encode(Channel.COMMAND, command)) == command  # what the agent accepts
        streams = _stream_items(command)
        if cluster_id not in hai:
            assert streams == [], cluster_id
            continue
        assert [entry for entry, _ in streams] == ["vov-18-gio@20261123T1100Z", "vov-18-gio@20261124T1100Z"]
        for _, stream_item in streams:
            assert stream_item == {
                "title": "Thời sự 18 giờ",
                "priority": "normal",
                "stream": {"url": VOV, "duration_s": 1800},
            }
    # Each relay is a scheduled airing of the relay bulletin, counted in the statistics like a recording's.
    with session_scope(fleet) as session:
        airing = session.get(ScheduledAiring, "vov-18-gio@20261123T1100Z#0")
        assert (airing.bulletin_id, airing.title) == (relay_id, "Thời sự 18 giờ")

    again = apply(RELAY_FILE)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert _rows(fleet)["bulletin"] == 1  # the same relay bulletin, not a copy
    assert push_schedules(fleet, publisher, public_url, MONDAY_0700 + timedelta(minutes=1)) == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ((VOV, "https://radio.example.vn:8000/vov2.mp3"), {"url": "https://radio.example.vn:8000/vov2.mp3"}),
        (("minutes: 30", "minutes: 45"), {"duration_s": 2700}),
    ],
)
def test_a_changed_address_or_length_is_pushed_again(apply, fleet, public_url, clusters_of, change, expected) -> None:
    apply(RELAY_FILE)
    publisher = RecordingPublisher()
    push_schedules(fleet, publisher, public_url, MONDAY_0700)
    assert apply(RELAY_FILE.replace(*change)).updated == 1
    assert push_schedules(fleet, publisher, public_url, MONDAY_0700 + timedelta(minutes=1)) == 5
    assert sorted(publisher.last) == clusters_of("Xã Bình Hải")
    for command in publisher.last.values():
        streams = [item["stream"] for _, item in _stream_items(command)]
        assert streams and all(stream == {"url": VOV, "duration_s": 1800, **expected} for stream in streams)
    with session_scope(fleet) as session:  # a new approved relay; the old one stays as it aired
        assert session.exec(select(func.count()).select_from(Bulletin)).one() == 2


def test_the_export_writes_stream_and_minutes_and_reads_back_unchanged(apply, fleet, snapshot, database_url) -> None:
    untitled = RELAY_FILE.replace("      - title: Thời sự 18 giờ\n        stream:", "      - stream:")
    apply(untitled)
    with session_scope(fleet) as session:
        exported = export_schedule(session)
    assert f"stream: {VOV}\n" in exported and "minutes: 30\n" in exported and "bulletin:" not in exported
    item = parse_schedule_yaml(exported).programmes[0].items[0]
    # Without a title of its own the relay has its programme's.
    assert (item.title, item.stream, item.minutes, item.category) == ("Tiếp sóng thời sự VOV1", VOV, 30, "Thời sự")
    before = snapshot(database_url)
    result = apply(exported)
    assert (result.created, result.updated) == (0, 0)
    assert snapshot(database_url) == before


@pytest.mark.parametrize(
    ("old", "new", "place", "vi", "en"),
    [
        (
            VOV,
            "ftp://radio.example.vn/vov1.mp3",
            ".stream",
            "phải bắt đầu bằng http:// hoặc https://",
            "must start with http:// or https://",
        ),
        (
            VOV,
            "https://vov:mat-khau@radio.example.vn/vov1.mp3",
            ".stream",
            "mật khẩu",
            "must not carry a user name or password",
        ),
        (
            "minutes: 30",
            "minutes: 0",
            ".minutes",
            "0 không hợp lệ: cần số phút nguyên từ 1 đến 240",
            "0 is not valid: whole minutes, 1 to 240",
        ),
        ("minutes: 30", "minutes: 241", ".minutes", "241 không hợp lệ", "241 is not valid: whole minutes, 1 to 240"),
        ("minutes: 30", "minutes: 30\n        text: Xin chào.", "", "cần đúng một trong bốn", "needs exactly one of"),
        ("        minutes: 30\n", "", ".minutes", "bắt buộc với mục stream", "required with a stream item"),
    ],
)
def test_a_bad_stream_item_is_refused_at_its_place_in_both_languages(
    apply, fleet, snapshot, database_url, old, new, place, vi, en
) -> None:
    before = snapshot(database_url)
    with pytest.raises(ScheduleFileError) as error:
        apply(RELAY_FILE.replace(old, new))
    where = f"programmes[0].items[0]{place}: "
    assert [p for p in error.value.problems if p.startswith(where) and vi in p], error.value.problems
    assert [p for p in error.value.problems_en if p.startswith(where) and en in p], error.value.problems_en
    assert snapshot(database_url) == before


def test_the_api_refuses_a_bad_stream_in_english(api, fleet) -> None:
    bad = RELAY_FILE.replace(VOV, "ftp://radio.example.vn/vov1.mp3")
    refused = api.post("/api/v1/schedules", content=bad.encode(), headers={"content-type": "application/yaml"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == [
        "programmes[0].items[0].stream: must start with http:// or https://, got 'ftp://radio.example.vn/vov1.mp3'"
    ]
    assert _rows(fleet)["slot"] == 0
    applied = api.post("/api/v1/schedules", content=RELAY_FILE.encode(), headers={"content-type": "application/yaml"})
    assert applied.status_code == 201 and applied.json()["created"] == 2, applied.text
    assert f"stream: {VOV}" in api.get("/api/v1/schedules").text


def test_a_30_minute_relay_at_1800_and_a_text_at_1810_conflict(apply, fleet, public_url, clusters_of) -> None:
    both = _with_notice(RELAY_FILE)
    checked = apply(both)
    assert not checked.applied
    assert [(c.first_slot, c.second_slot, c.clusters) for c in checked.conflicts] == [
        ("vov-18-gio", "thong-bao-18-10", 5)
    ]
    # 30 minutes from 18:00 overlap the 18:10 programme by 20 minutes.
    assert checked.conflicts[0].overlap_s == pytest.approx(20 * 60)
    assert checked.conflicts[0].first_at == datetime(2026, 11, 23, 18, 10, tzinfo=LOCAL_TZ)
    assert _rows(fleet)["slot"] == 0
    # Five minutes of relay end before 18:10: nothing to report.
    assert apply(both.replace("minutes: 30", "minutes: 5")).conflicts == []

    assert apply(both, accept_conflicts=True).applied
    cluster_id = clusters_of("Xã Bình Hải")[0]
    start = datetime(2026, 11, 23, 17, 0, tzinfo=LOCAL_TZ)
    with session_scope(fleet) as session:
        plays = preview(session, public_url, [cluster_id], start, start + timedelta(hours=3))[cluster_id]
    assert [(p.title, p.start.astimezone(LOCAL_TZ).strftime("%H:%M")) for p in plays] == [
        ("Thời sự 18 giờ", "18:00"),
        ("Lịch tiêm chủng", "18:30"),  # queued behind the relay's 30 minutes
    ]
    relay = plays[0]
    assert (relay.audio, relay.stream.url, relay.end - relay.start) == (None, VOV, timedelta(minutes=30))


def test_a_stored_relay_conflicts_with_a_bulletin_scheduled_at_1810(
    apply, fleet, public_url, audio_dir, files_dir, tone
) -> None:
    """The one-slot form checks against the stored schedule: a relay read back from the database keeps its length."""
    from datetime import date, time

    from broadcast_server.models import AdminUnit
    from broadcast_server.scheduling.single_slot import SingleSlotRequest, schedule_bulletin
    from broadcast_server.services.recordings import create_audio_bulletin

    apply(RELAY_FILE)
    with session_scope(fleet) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        source = files_dir / tone("thong-bao.wav", seconds=2.0)
        recording = create_audio_bulletin(
            session, audio_dir, source, filename="thong-bao.wav", title="Thông báo", owner_unit_id=hai
        )
        recording.status = "approved"
        recording_id = recording.id
    request = SingleSlotRequest(recording_id, date(2026, 11, 30), time(18, 10), (hai,))
    with session_scope(fleet) as session:
        result = schedule_bulletin(session, request, public_url=public_url, now=MONDAY_0700, dry_run=True)
    assert not result.applied
    assert [(c.first_slot, round(c.overlap_s)) for c in result.conflicts] == [("vov-18-gio", 20 * 60)]
    # At 18:30, when the relay has ended, nothing clashes.
    later = SingleSlotRequest(recording_id, date(2026, 11, 30), time(18, 30), (hai,))
    with session_scope(fleet) as session:
        assert schedule_bulletin(session, later, public_url=public_url, now=MONDAY_0700, dry_run=True).conflicts == []


def test_the_preview_api_shows_a_relay_item_by_its_stream(apply, api, clusters_of) -> None:
    """GET /api/v1/schedules/preview names a relay by its stream address and length (no file to name)."""
    assert apply(RELAY_FILE).applied
    cluster_id = clusters_of("Xã Bình Hải")[0]
    start = datetime(2026, 11, 23, 17, 0, tzinfo=LOCAL_TZ)
    answer = api.get(
        "/api/v1/schedules/preview",
        params={"cluster_id": cluster_id, "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
    )
    assert answer.status_code == 200, answer.text
    [relay] = answer.json()
    assert (relay["audio_sha256"], relay["stream_url"], relay["duration_s"]) == (None, VOV, 1800.0)
    assert relay["slot_id"] == "vov-18-gio" and relay["title"] == "Thời sự 18 giờ"
