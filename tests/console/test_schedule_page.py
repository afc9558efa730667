"""Lịch phát: schedule an approved bulletin once or weekly, see conflicts with the rule before saving, see the week."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session, select

from broadcast_server.models import AuditEntry, Slot
from tests.console.conftest import make_bulletin, sign_in


def _form(csrf, bulletin_id, day, at, units, action, **extra):
    return {
        "csrf_token": csrf,
        "bulletin_id": bulletin_id,
        "start_date": day.isoformat(),
        "start_time": at,
        "unit_ids": units,
        "action": action,
        **extra,
    }


def test_schedule_once_then_a_conflict_is_shown_with_its_rule(client, engine, runtime, world):
    first = make_bulletin(runtime, world.commune_a, status="approved", title="Bản tin sáng")
    second = make_bulletin(
        runtime,
        world.commune_a,
        status="approved",
        title="Thông báo họp",
        text="Mời bà con dự họp thôn vào tối nay, lúc bảy giờ.",
    )
    day = date.today() + timedelta(days=3)
    csrf = sign_in(client, "duyet")
    checked = client.post("/schedule/new", data=_form(csrf, first, day, "06:30", [world.commune_a], "check"))
    assert checked.status_code == 200
    assert f"<strong>{len(world.clusters_a)}</strong> cụm loa" in checked.text
    assert "Không trùng giờ" in checked.text
    saved = client.post("/schedule/new", data=_form(csrf, first, day, "06:30", [world.commune_a], "save"))
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"]
    week = client.get(saved.headers["location"]).text
    assert "Bản tin sáng" in week and "06:30" in week

    clash = client.post("/schedule/new", data=_form(csrf, second, day, "06:30", [world.commune_a], "save"))
    assert clash.status_code == 200
    assert "Trùng giờ với chương trình khác" in clash.text
    assert "“Bản tin sáng” và “Thông báo họp”" in clash.text or "“Thông báo họp” và “Bản tin sáng”" in clash.text
    assert "Quy tắc sẽ áp dụng: chương trình sau xếp hàng, phát khi chương trình trước kết thúc" in clash.text
    with Session(engine) as session:
        assert len(session.exec(select(Slot)).all()) == 1  # not saved until accepted
    accepted = client.post("/schedule/new", data=_form(csrf, second, day, "06:30", [world.commune_a], "accept"))
    assert accepted.status_code == 303
    with Session(engine) as session:
        slots = session.exec(select(Slot)).all()
        assert len(slots) == 2 and {s.start_time for s in slots} == {"06:30"}
        assert {
            e.object_id for e in session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.create"))
        } == {s.id for s in slots}


def test_weekly_schedule_appears_on_each_chosen_day(client, engine, runtime, world):
    bulletin = make_bulletin(runtime, world.commune_b, status="approved", title="Chuyên mục nông nghiệp")
    csrf = sign_in(client, "bientap")
    monday = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    saved = client.post(
        "/schedule/new",
        data=_form(
            csrf, bulletin, monday, "17:00", [world.commune_b], "save", repeat="weekly", weekdays=["MO", "WE", "FR"]
        ),
    )
    assert saved.status_code == 303, saved.text
    with Session(engine) as session:
        slot = session.exec(select(Slot)).one()
        assert slot.rule == "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    week = client.get(f"/schedule?week={monday.isoformat()}").text
    assert week.count("Chuyên mục nông nghiệp") == 3
    # A broadcaster of the other commune does not see it in its calendar.
    client.cookies.clear()
    sign_in(client, "xa-a")
    assert "Chuyên mục nông nghiệp" not in client.get(f"/schedule?week={monday.isoformat()}").text


def test_bad_schedules_are_refused_with_reasons(client, engine, runtime, world):
    draft = make_bulletin(runtime, world.commune_a, status="draft", title="Nháp")
    approved = make_bulletin(runtime, world.commune_a, status="approved", title="Đã duyệt")
    csrf = sign_in(client, "duyet")
    past = client.post(
        "/schedule/new", data=_form(csrf, approved, date(2020, 1, 1), "07:00", [world.commune_a], "save")
    )
    assert past.status_code == 422 and "giờ phát đã qua" in past.text
    not_approved = client.post(
        "/schedule/new", data=_form(csrf, draft, date.today() + timedelta(days=1), "07:00", [world.commune_a], "save")
    )
    assert not_approved.status_code == 422 and "chỉ lên lịch được bản tin đã duyệt" in not_approved.text
    no_days = client.post(
        "/schedule/new",
        data=_form(
            csrf, approved, date.today() + timedelta(days=1), "07:00", [world.commune_a], "save", repeat="weekly"
        ),
    )
    assert no_days.status_code == 422 and "hãy chọn các ngày" in no_days.text
    with Session(engine) as session:
        assert session.exec(select(Slot)).all() == []


def _save_weekly(client, engine, csrf, bulletin, units, monday):
    saved = client.post(
        "/schedule/new",
        data=_form(csrf, bulletin, monday, "17:00", units, "accept", repeat="weekly", weekdays=["MO", "TH"]),
    )
    assert saved.status_code == 303, saved.text
    with Session(engine) as session:
        return session.exec(select(Slot).order_by(Slot.created_at.desc())).first().id


def test_a_slot_page_and_who_may_cancel_it(client, engine, runtime, world):
    monday = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    column = make_bulletin(runtime, world.commune_a, status="approved", title="Chuyển đổi số xã A")
    district_wide = make_bulletin(runtime, world.district_id, status="approved", title="Bản tin huyện")
    csrf = sign_in(client, "duyet")
    commune_slot = _save_weekly(client, engine, csrf, column, [world.commune_a], monday)
    district_slot = _save_weekly(client, engine, csrf, district_wide, [world.commune_a, world.commune_b], monday)

    week = client.get(f"/schedule?week={monday.isoformat()}").text
    assert f'href="/schedule/slots/{commune_slot}"' in week and f'href="/schedule/slots/{district_slot}"' in week
    shown = client.get(f"/schedule/slots/{commune_slot}")
    assert shown.status_code == 200
    assert "Hằng tuần: Thứ Hai, Thứ Năm" in shown.text and "Chuyển đổi số xã A" in shown.text
    assert f"<strong>{len(world.clusters_a)}</strong> cụm loa" in shown.text
    assert shown.text.count("17:00 ") >= 5  # the next five airings, local time
    assert "Hủy khung giờ này" in shown.text

    # Commune B's broadcaster: commune A's slot is none of its business; the district's it may read.
    client.cookies.clear()
    csrf = sign_in(client, "xa-b")
    assert client.get(f"/schedule/slots/{commune_slot}").status_code == 403
    page_b = client.get(f"/schedule/slots/{district_slot}")
    assert page_b.status_code == 200 and "Hủy khung giờ này" not in page_b.text
    assert client.post(f"/schedule/slots/{district_slot}/cancel", data={"csrf_token": csrf}).status_code == 403

    # Commune A's approver may cancel its commune's slot, not the district's (it reaches commune B too).
    client.cookies.clear()
    csrf = sign_in(client, "duyet-a")
    assert "Hủy khung giờ này" not in client.get(f"/schedule/slots/{district_slot}").text
    refused = client.post(f"/schedule/slots/{district_slot}/cancel", data={"csrf_token": csrf})
    assert refused.status_code == 403 and "chỉ cấp trên được hủy" in refused.text
    cancelled = client.post(f"/schedule/slots/{commune_slot}/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 303 and cancelled.headers["location"].endswith("?cancelled=1")
    after = client.get(cancelled.headers["location"]).text
    assert "Đã hủy lúc" in after and "Hủy khung giờ này" not in after and "Các buổi sắp tới" not in after
    again = client.post(f"/schedule/slots/{commune_slot}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 303 and "cancelled=1" not in again.headers["location"]

    with Session(engine) as session:
        slots = {s.id: s for s in session.exec(select(Slot))}
        assert slots[commune_slot].cancelled_at is not None and slots[district_slot].cancelled_at is None
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.cancel")).all()
        assert [(e.object_id, e.actor) for e in audit] == [(commune_slot, "duyet-a")]
    week = client.get(f"/schedule?week={monday.isoformat()}").text
    assert "Chuyển đổi số xã A" not in week and "Bản tin huyện" in week
    assert client.get("/schedule/slots/no-such-slot").status_code == 404


def test_the_list_of_slots_in_the_users_area(client, engine, runtime, world):
    monday = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    column = make_bulletin(runtime, world.commune_a, status="approved", title="Chuyên mục xã A")
    notice = make_bulletin(runtime, world.commune_b, status="approved", title="Thông báo xã B")
    csrf = sign_in(client, "duyet")
    weekly_a = _save_weekly(client, engine, csrf, column, [world.commune_a], monday)
    once_b = client.post("/schedule/new", data=_form(csrf, notice, monday, "09:00", [world.commune_b], "accept"))
    assert once_b.status_code == 303
    client.post(f"/schedule/slots/{weekly_a}/cancel", data={"csrf_token": csrf})

    assert 'href="/schedule/slots"' in client.get("/schedule").text
    active = client.get("/schedule/slots")
    assert active.status_code == 200
    assert "Thông báo xã B" in active.text and "Một lần" in active.text and "Chuyên mục xã A" not in active.text
    every = client.get("/schedule/slots?show=all").text
    assert "Chuyên mục xã A" in every and "Hằng tuần: Thứ Hai, Thứ Năm" in every and "Đã hủy" in every

    client.cookies.clear()
    sign_in(client, "xa-a")  # commune A's broadcaster: its commune's slot only, never commune B's
    mine = client.get("/schedule/slots?show=all").text
    assert "Chuyên mục xã A" in mine and "Thông báo xã B" not in mine


WEEK_FILE = """
version: 1
programmes:
  - id: tin-thi-tran
    title: Tin thị trấn
    items:
      - title: Lịch thu gom rác
        text: Tổ vệ sinh môi trường thu gom rác vào tối thứ tư hằng tuần.
slots:
  - id: tin-thi-tran-thu-tu
    programme: tin-thi-tran
    from: {day}
    start: "{at}"
    rule: FREQ=WEEKLY;BYDAY=WE
    target: {{units: [{unit}]}}
"""


def test_a_schedule_file_from_the_browser(client, engine, runtime, world):
    from tests.console.conftest import COMMUNE_A, COMMUNE_B

    day = (date.today() + timedelta(days=1)).isoformat()
    own = WEEK_FILE.format(day=day, at="18:00", unit=f"Bình Phước/Hớn Quản/{COMMUNE_A}")
    csrf = sign_in(client, "duyet")
    assert 'href="/schedule/file"' in client.get("/schedule").text
    checked = client.post(
        "/schedule/file",
        data={"csrf_token": csrf, "action": "check"},
        files={"file": ("tuan.yaml", own.encode(), "application/yaml")},
    )
    assert checked.status_code == 200 and "Kiểm tra xong, chưa lưu gì" in checked.text
    assert "tin-thi-tran-thu-tu" in checked.text  # the file carried on in the text box for the next step
    with Session(engine) as session:
        assert session.exec(select(Slot)).all() == []
    saved = client.post("/schedule/file", data={"csrf_token": csrf, "action": "save", "text": own})
    assert saved.status_code == 200 and "Đã áp dụng" in saved.text and "Thêm <strong>2</strong>" in saved.text
    again = client.post("/schedule/file", data={"csrf_token": csrf, "action": "save", "text": own})
    assert "Thêm <strong>0</strong>, sửa <strong>0</strong>" in again.text
    with Session(engine) as session:
        assert [s.id for s in session.exec(select(Slot))] == ["tin-thi-tran-thu-tu"]
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.apply")).all()
        assert [(a.object_id, a.actor) for a in audit] == [("console", "duyet")]

    broken = client.post(
        "/schedule/file", data={"csrf_token": csrf, "action": "check", "text": own.replace('"18:00"', '"25:00"')}
    )
    assert broken.status_code == 422 and "slots[0].start: cần giờ dạng HH:MM" in broken.text

    client.cookies.clear()
    csrf = sign_in(client, "bientap")  # an editor checks a file; applying it would approve its text items
    other = own.replace("tin-thi-tran", "tin-bien-tap")
    assert client.post("/schedule/file", data={"csrf_token": csrf, "action": "check", "text": other}).status_code == 200
    not_approver = client.post("/schedule/file", data={"csrf_token": csrf, "action": "save", "text": other})
    assert not_approver.status_code == 403 and "cần người duyệt tin" in not_approver.text

    client.cookies.clear()
    csrf = sign_in(client, "duyet-a")  # commune A's approver: commune B is not theirs
    theirs = WEEK_FILE.format(day=day, at="19:00", unit=f"Bình Phước/Hớn Quản/{COMMUNE_B}").replace(
        "tin-thi-tran", "tin-b"
    )
    refused = client.post("/schedule/file", data={"csrf_token": csrf, "action": "save", "text": theirs})
    assert refused.status_code == 403 and "slots[0].target: phát cả ngoài địa bàn của bạn" in refused.text
    client.cookies.clear()
    csrf = sign_in(client, "xa-a")  # a broadcaster does not schedule
    assert client.post("/schedule/file", data={"csrf_token": csrf, "text": own}).status_code == 403
    with Session(engine) as session:
        assert [s.id for s in session.exec(select(Slot))] == ["tin-thi-tran-thu-tu"]
