"""Items that name an approved bulletin (`bulletin: <id>`): a commune's recording in a district's programme.

The item plays that bulletin itself (no copy), applying the file again changes nothing, the export writes the
id back, and a bulletin not approved, unknown or an emergency is refused at its place in the file. An approved
live relay is named, and scheduled from the one-slot form, like a recording.
"""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from broadcast_server.db.session import session_scope
from broadcast_server.models import AdminUnit, Bulletin, ProgrammeItem
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml

from .conftest import bearer

FILE = """
version: 1
programmes:
  - id: tin-xa
    title: Tin các xã
    items:
      - title: Lời chào
        text: Đài truyền thanh xin kính chào bà con.
      - title: Ghi âm của xã Bình Hải
        bulletin: {bulletin}
        priority: priority
slots:
  - id: tin-xa-toi
    programme: tin-xa
    from: 2026-11-23
    start: "19:00"
    rule: FREQ=WEEKLY;BYDAY=SA
    target: {{units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}}
"""


@pytest.fixture
def recording(fleet, audio_dir, files_dir, tone):
    """make(status, priority): a recording bulletin of Bình Hải, through the upload service, in that state."""
    from broadcast_server.services.recordings import create_audio_bulletin

    source = files_dir / tone("ghi-am.wav", seconds=2.0)

    def make(status: str = "approved", priority: str = "normal") -> str:
        with session_scope(fleet) as session:
            hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
            bulletin = create_audio_bulletin(
                session,
                audio_dir,
                source,
                filename="ghi-am.wav",
                title="Ghi âm",
                owner_unit_id=hai,
                category="Chuyển đổi số",
            )
            bulletin.status, bulletin.priority = status, priority
            return bulletin.id

    return make


def _bulletins(engine) -> int:
    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(Bulletin)).one()


def test_an_item_plays_the_named_bulletin_itself(apply, fleet, recording) -> None:
    named = recording()
    text = FILE.format(bulletin=named)
    before = _bulletins(fleet)
    result = apply(text)
    assert result.applied and (result.created, result.updated) == (2, 0)  # the programme and the slot
    assert _bulletins(fleet) == before + 1  # a copy for the text item only: the recording is used as it is
    with session_scope(fleet) as session:
        items = session.exec(select(ProgrammeItem).order_by(ProgrammeItem.position)).all()
        assert [(i.bulletin_id == named, i.names_bulletin, i.priority) for i in items] == [
            (False, False, "normal"),
            (True, True, "priority"),
        ]
        exported = export_schedule(session)
    again = apply(text)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    # The export names the bulletin again (no text, no category of its own), and reads back to no change.
    item = parse_schedule_yaml(exported).programmes[0].items[1]
    assert (item.bulletin, item.text, item.audio_file, item.category) == (named, None, None, None)
    assert f"bulletin: {named}" in exported
    assert (apply(exported).created, apply(exported).updated) == (0, 0)


def test_an_item_turning_from_a_named_bulletin_into_text_gets_its_own(apply, fleet, recording) -> None:
    named = recording()
    apply(FILE.format(bulletin=named))
    spoken = FILE.format(bulletin=named).replace(f"bulletin: {named}", "text: Bản tin do máy đọc.")
    assert apply(spoken).updated == 1
    with session_scope(fleet) as session:
        item = session.exec(select(ProgrammeItem).where(ProgrammeItem.position == 1)).one()
        assert item.bulletin_id != named and not item.names_bulletin


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"status": "submitted"}, "chưa được duyệt"),
        ({"priority": "emergency"}, "tin khẩn cấp không xếp lịch"),
        (None, "không có bản tin"),
    ],
)
def test_a_bulletin_that_cannot_be_scheduled_is_refused_at_its_place(apply, fleet, recording, state, says) -> None:
    named = recording(**state) if state else "khong-co-ban-tin-nay"
    with pytest.raises(ScheduleFileError) as error:
        apply(FILE.format(bulletin=named))
    place = "programmes[0].items[1].bulletin: "
    assert any(p.startswith(place) and says in p for p in error.value.problems), error.value.problems
    with session_scope(fleet) as session:
        assert session.exec(select(func.count()).select_from(ProgrammeItem)).one() == 0


def test_one_source_per_item_and_no_category_beside_a_bulletin() -> None:
    both = FILE.format(bulletin="abc").replace("        bulletin: abc\n", "        bulletin: abc\n        text: x\n")
    with pytest.raises(ScheduleFileError) as error:
        parse_schedule_yaml(both)
    assert "programmes[0].items[1]: cần đúng một trong bốn" in error.value.problems[0]
    with pytest.raises(ScheduleFileError) as error:
        parse_schedule_yaml(FILE.format(bulletin="abc").replace("priority: priority", "category: Thời sự"))
    assert error.value.problems == [
        "programmes[0].items[1].category: mục bulletin dùng chuyên mục của chính bản tin đó"
    ]


def test_a_bulletin_scheduled_from_the_form_exports_as_itself(apply, fleet, recording, public_url) -> None:
    """The console's form makes a one-item programme naming the bulletin: its export reads back unchanged.

    (Before items could name a bulletin, a recording scheduled from the form exported as `text: null`.)"""
    from datetime import date, time

    from broadcast_server.scheduling.single_slot import SingleSlotRequest, schedule_bulletin

    named = recording()
    with session_scope(fleet) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        request = SingleSlotRequest(named, date(2030, 1, 7), time(18, 0), (hai,), weekdays=("MO",))
        assert schedule_bulletin(session, request, public_url=public_url).applied
    with session_scope(fleet) as session:
        exported = export_schedule(session)
    assert f"bulletin: {named}" in exported
    again = apply(exported)
    assert (again.created, again.updated) == (0, 0)
    # A row stored before the column existed (names_bulletin false) with a recording: still its id.
    with session_scope(fleet) as session:
        item = session.exec(select(ProgrammeItem).where(ProgrammeItem.bulletin_id == named)).one()
        item.names_bulletin = False
        session.add(item)
    with session_scope(fleet) as session:
        assert export_schedule(session) == exported


def test_a_commune_names_only_its_own_bulletins(fleet, recording, api) -> None:
    named = recording()  # Bình Hải's
    text = FILE.format(bulletin=named).replace("Xã Bình Hải]", "Xã Bình Châu]")
    headers = {"content-type": "application/yaml", **bearer(fleet, "duyet-chau", "Xã Bình Châu")}
    refused = api.post("/api/v1/schedules", content=text.encode(), headers=headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == [
        f"programmes[0].items[1].bulletin: bulletin '{named}' belongs to a unit outside your area"
    ]


@pytest.fixture
def approved_relay(fleet):
    """An approved relay of Bình Hải (the VOV news, 30 minutes), through the relay service."""
    from broadcast_server.services.relays import create_relay_bulletin

    with session_scope(fleet) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        relay = create_relay_bulletin(
            session, title="Tiếp sóng VOV1", stream_url=VOV1, duration_s=1800, owner_unit_id=hai
        )
        relay.status = "approved"
        return relay.id


VOV1 = "https://radio.example.vn/vov1.mp3"


def test_an_item_names_an_approved_relay(apply, fleet, approved_relay, public_url) -> None:
    """`bulletin: <id>` of an approved relay: the item relays its stream for its length, with no copy made."""
    from broadcast_server.scheduling.catalog import load_resolved_slots

    text = FILE.format(bulletin=approved_relay)
    before = _bulletins(fleet)
    result = apply(text)
    assert result.applied and (result.created, result.updated) == (2, 0)
    assert _bulletins(fleet) == before + 1  # a copy for the text item only
    with session_scope(fleet) as session:
        item = session.exec(select(ProgrammeItem).where(ProgrammeItem.position == 1)).one()
        assert (item.bulletin_id, item.names_bulletin, item.priority) == (approved_relay, True, "priority")
        (slot,) = load_resolved_slots(session, public_url)
        relayed = slot.items[1]
        assert (relayed.audio, relayed.stream.url, relayed.duration_s) == (None, VOV1, 1800)
        assert slot.bulletin_ids[1] == approved_relay
        exported = export_schedule(session)
    assert f"bulletin: {approved_relay}" in exported and "stream:" not in exported
    again = apply(exported)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_the_one_slot_form_schedules_an_approved_relay(fleet, approved_relay, public_url, api) -> None:
    """The console's form and `POST /api/v1/schedules/slots`: a relay at 18:00 every day, and its export."""
    from datetime import date, time

    from broadcast_server.scheduling.catalog import load_resolved_slots
    from broadcast_server.scheduling.single_slot import SingleSlotRequest, schedule_bulletin

    every_day = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    with session_scope(fleet) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        request = SingleSlotRequest(approved_relay, date(2030, 1, 7), time(18, 0), (hai,), weekdays=every_day)
        result = schedule_bulletin(session, request, public_url=public_url)
        assert result.applied and result.clusters == 5
    with session_scope(fleet) as session:
        (slot,) = load_resolved_slots(session, public_url)
        assert (slot.start_time, slot.items[0].stream.url, slot.items[0].duration_s) == (time(18, 0), VOV1, 1800)
        exported = export_schedule(session)
    assert f"bulletin: {approved_relay}" in exported

    body = {"bulletin_id": approved_relay, "start_date": "2030-01-08", "start_time": "06:00", "unit_ids": [hai]}
    saved = api.post("/api/v1/schedules/slots", json=body)
    assert saved.status_code == 201, saved.text
    # The API's clash check knows the relay's 30 minutes: a second relay at 18:10 on the same day clashes.
    clash = api.post("/api/v1/schedules/slots", json={**body, "start_time": "18:10", "dry_run": True}).json()
    assert [
        (c["second_slot"] == slot.id or c["first_slot"] == slot.id, c["overlap_s"]) for c in clash["conflicts"]
    ] == [(True, 20 * 60)]
