"""Tiếp sóng in the console: a live relay made, refused, shown, edited, approved, played now from its page and
scheduled every day at 18:00."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlmodel import Session, select

from broadcast_server.models import AuditEntry, Broadcast, Bulletin, Delivery
from mqtt_contract import Channel, validate
from tests.console.conftest import make_bulletin, sign_in
from tests.server.test_dispatch_and_ingest import RecordingPublisher

STREAM = "https://radio.example.vn:8000/vov1.mp3"
HLS = "https://truyenhinh.example.vn/live/xa-tan-khai/index.m3u8"


def make_relay(runtime, owner_unit_id: int, *, status: str = "draft", duration_s: int = 1800, **fields) -> str:
    """A relay bulletin of STREAM owned by a commune, in the given status (made by the relay service)."""
    from broadcast_server.db.session import session_scope
    from broadcast_server.services.relays import create_relay_bulletin

    with session_scope(runtime.engine) as session:
        bulletin = create_relay_bulletin(
            session,
            title=fields.pop("title", "Tiếp sóng thời sự VOV1"),
            stream_url=fields.pop("stream_url", STREAM),
            duration_s=duration_s,
            owner_unit_id=owner_unit_id,
            **fields,
        )
        bulletin.status = status
        session.add(bulletin)
        return bulletin.id


def alert_of(html: str) -> str:
    """The page's error message (not the hints around the form, which name the same rules)."""
    match = re.search(r'<p class="flash bad" role="alert">([^<]*)</p>', html)
    assert match, "no error message on the page"
    return match.group(1)


def _created_id(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"].split("/")[2].split("?")[0]


def test_a_broadcaster_makes_a_relay_through_the_form_and_submits_it(client, engine, world):
    csrf = sign_in(client, "xa-a")
    listing = client.get("/bulletins").text
    assert '<a class="button" href="/bulletins/relay">+ Tiếp sóng</a>' in listing
    form = client.get("/bulletins/relay")
    assert form.status_code == 200
    assert 'type="url" name="stream_url"' in form.text and 'type="number" name="minutes" min="1" max="240"' in form.text
    assert "Icecast/Shoutcast" in form.text and ".m3u8" in form.text and "tự kết nối lại" in form.text
    assert (
        'value="save">Lưu nháp</button>' in form.text
        and 'value="submit" class="primary">Gửi duyệt</button>' in form.text
    )

    data = {"csrf_token": csrf, "title": "Thời sự VOV1", "stream_url": f"  {STREAM} ", "minutes": "30"}
    submitted = client.post("/bulletins/relay", data={**data, "category": "Thời sự", "action": "submit"})
    relay_id = _created_id(submitted)
    draft_id = _created_id(client.post("/bulletins/relay", data={**data, "stream_url": HLS, "minutes": "240"}))
    with Session(engine) as session:
        relay = session.get(Bulletin, relay_id)
        assert (relay.kind, relay.status, relay.owner_unit_id) == ("relay", "submitted", world.commune_a)
        assert (relay.stream_url, relay.relay_duration_s, relay.category) == (STREAM, 1800, "Thời sự")
        assert (relay.audio_asset_id, relay.text, relay.priority) == (None, None, "normal")
        actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.object_id == relay_id))]
        assert actions == ["bulletin.create", "bulletin.submit"]
        draft = session.get(Bulletin, draft_id)
        assert (draft.status, draft.stream_url, draft.relay_duration_s) == ("draft", HLS, 4 * 3600)

    listing = client.get("/bulletins").text
    assert "Tiếp sóng · 30 phút" in listing and "Tiếp sóng · 240 phút" in listing
    assert "Đã lưu bản tin." in client.get(submitted.headers["location"]).text


BAD_RELAYS = [
    pytest.param({"stream_url": "ftp://radio.example.vn/live"}, "phải bắt đầu bằng http:// hoặc https://", id="ftp"),
    pytest.param({"stream_url": "radio.example.vn/live"}, "phải bắt đầu bằng http:// hoặc https://", id="no-scheme"),
    pytest.param(
        {"stream_url": "https://user:secret@radio.example.vn/live"},
        "không được chứa tên đăng nhập hay mật khẩu",
        id="password",
    ),
    pytest.param({"stream_url": "https://radio.example.vn/truc tiep.mp3"}, "không được có dấu cách", id="space"),
    pytest.param({"stream_url": "https://radio.example.vn/" + "a" * 2000}, "dài quá 2000 ký tự", id="too-long"),
    pytest.param({"stream_url": "http://[radio.example.vn/live"}, "Địa chỉ luồng phát không hợp lệ", id="broken-host"),
    pytest.param({"stream_url": ""}, "Hãy nhập địa chỉ luồng phát.", id="no-address"),
    pytest.param({"minutes": "0"}, "số phút nguyên từ 1 đến 240", id="zero-minutes"),
    pytest.param({"minutes": "241"}, "số phút nguyên từ 1 đến 240", id="241-minutes"),
    pytest.param({"minutes": "1.5"}, "số phút nguyên từ 1 đến 240", id="fraction"),
    pytest.param({"minutes": "ba mươi"}, "số phút nguyên từ 1 đến 240", id="words"),
    pytest.param({"minutes": ""}, "số phút nguyên từ 1 đến 240", id="no-minutes"),
    pytest.param({"title": "   "}, "Hãy đặt tiêu đề cho bản tin.", id="blank-title"),
]


@pytest.mark.parametrize(("change", "message"), BAD_RELAYS)
def test_a_bad_relay_is_refused_in_vietnamese_with_the_form_kept_and_nothing_stored(client, engine, change, message):
    csrf = sign_in(client, "xa-a")
    typed = {"title": "Tiếp sóng giữ lại", "stream_url": STREAM, "minutes": "45", "category": "Thời sự", **change}
    refused = client.post("/bulletins/relay", data={"csrf_token": csrf, "action": "submit", **typed})
    assert refused.status_code == 422
    assert message in alert_of(refused.text)
    for name in ("title", "stream_url", "minutes", "category"):
        assert f'name="{name}"' in refused.text
        assert f'value="{escape(typed[name])}"' in refused.text, name  # what was typed comes back
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []


def test_only_drafters_of_their_own_commune_make_relays(client, engine, world):
    assert client.get("/bulletins/relay").headers["location"].startswith("/login")
    sign_in(client, "xem")
    assert client.get("/bulletins/relay").status_code == 403
    assert "/bulletins/relay" not in client.get("/bulletins").text
    client.cookies.clear()
    csrf = sign_in(client, "xa-a")
    data = {"csrf_token": csrf, "title": "Mạo danh", "stream_url": STREAM, "minutes": "30"}
    assert client.post("/bulletins/relay", data={**data, "owner_unit_id": world.commune_b}).status_code == 403
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []


def test_the_relay_page_shows_the_address_and_length_and_an_edit_changes_them(client, engine, runtime, world):
    relay_id = make_relay(runtime, world.commune_a, status="returned", category="Thời sự")
    csrf = sign_in(client, "xa-a")
    page = client.get(f"/bulletins/{relay_id}").text
    link = f'<a class="stream-url" href="{STREAM}" target="_blank" rel="noopener noreferrer">{STREAM}</a>'
    assert link in page and "Thời lượng: <strong>30 phút</strong>" in page and "Tiếp sóng · 30 phút" in page
    assert "<audio" not in page  # nothing to listen to on the server: the link opens the stream itself
    assert f'action="/bulletins/{relay_id}/edit-relay"' in page and f'value="{STREAM}"' in page
    assert 'name="minutes" min="1" max="240" step="1" value="30"' in page
    assert f'action="/bulletins/{relay_id}/edit"' not in page  # the text form is not offered

    new = {"title": "Tiếp sóng Đài tỉnh", "stream_url": HLS, "minutes": "45", "category": "Tin tỉnh"}
    edited = client.post(f"/bulletins/{relay_id}/edit-relay", data={"csrf_token": csrf, **new})
    assert edited.status_code == 303
    with Session(engine) as session:
        row = session.get(Bulletin, relay_id)
        assert (row.title, row.stream_url, row.relay_duration_s, row.category) == (new["title"], HLS, 2700, "Tin tỉnh")
        assert row.status == "edited"  # a returned bulletin, changed: ready to be sent again
        before = row.model_dump()
    page = client.get(f"/bulletins/{relay_id}").text
    assert f'href="{HLS}" target="_blank"' in page and "<strong>45 phút</strong>" in page

    refused = client.post(
        f"/bulletins/{relay_id}/edit-relay",
        data={"csrf_token": csrf, **new, "title": "Tiêu đề mới", "stream_url": "rtsp://camera.xa/1"},
    )
    assert refused.status_code == 422 and "phải bắt đầu bằng http:// hoặc https://" in alert_of(refused.text)
    assert '<details class="card" id="edit" open>' in refused.text
    assert 'value="rtsp://camera.xa/1"' in refused.text and 'value="Tiêu đề mới"' in refused.text
    too_long = client.post(f"/bulletins/{relay_id}/edit-relay", data={"csrf_token": csrf, **new, "minutes": "300"})
    assert too_long.status_code == 422 and "số phút nguyên từ 1 đến 240" in alert_of(too_long.text)
    text_form = client.post(f"/bulletins/{relay_id}/edit", data={"csrf_token": csrf, "title": "X", "text": "Y"})
    assert text_form.status_code == 422 and "Bản tin tiếp sóng được sửa bằng mẫu" in text_form.text
    with Session(engine) as session:
        assert session.get(Bulletin, relay_id).model_dump() == before  # refusals change nothing

    submitted = client.post(f"/bulletins/{relay_id}/edit-relay", data={"csrf_token": csrf, **new, "action": "submit"})
    assert submitted.status_code == 303
    late = client.post(f"/bulletins/{relay_id}/edit-relay", data={"csrf_token": csrf, **new, "minutes": "10"})
    assert late.status_code == 422 and "không sửa được nữa" in late.text
    with Session(engine) as session:
        assert (session.get(Bulletin, relay_id).status, session.get(Bulletin, relay_id).relay_duration_s) == (
            "submitted",
            2700,
        )


def test_a_length_in_seconds_from_the_api_is_kept_by_an_edit_of_the_title(client, engine, runtime, world):
    relay_id = make_relay(runtime, world.commune_a, duration_s=90)
    csrf = sign_in(client, "xa-a")
    page = client.get(f"/bulletins/{relay_id}").text
    assert "<strong>1 phút 30 giây</strong>" in page and 'step="1" value="2"' in page
    form = {"csrf_token": csrf, "title": "Tin ngắn", "stream_url": STREAM, "minutes": "2"}
    assert client.post(f"/bulletins/{relay_id}/edit-relay", data=form).status_code == 303
    with Session(engine) as session:
        assert (session.get(Bulletin, relay_id).title, session.get(Bulletin, relay_id).relay_duration_s) == (
            "Tin ngắn",
            90,
        )
    assert client.post(f"/bulletins/{relay_id}/edit-relay", data={**form, "minutes": "3"}).status_code == 303
    with Session(engine) as session:
        assert session.get(Bulletin, relay_id).relay_duration_s == 180


def test_another_communes_user_cannot_see_or_edit_a_relay(client, engine, runtime, world):
    relay_id = make_relay(runtime, world.commune_a, title="Tiếp sóng của Tân Khai")
    csrf = sign_in(client, "xa-b")
    page = client.get(f"/bulletins/{relay_id}")
    assert page.status_code == 403 and "địa bàn khác" in page.text and STREAM not in page.text
    assert "Tiếp sóng của Tân Khai" not in client.get("/bulletins").text
    form = {"csrf_token": csrf, "title": "Đổi", "stream_url": HLS, "minutes": "5"}
    assert client.post(f"/bulletins/{relay_id}/edit-relay", data=form).status_code == 403
    assert client.post(f"/bulletins/{relay_id}/submit", data={"csrf_token": csrf}).status_code == 403
    with Session(engine) as session:
        row = session.get(Bulletin, relay_id)
        assert (row.title, row.stream_url, row.status) == ("Tiếp sóng của Tân Khai", STREAM, "draft")


def test_the_approver_sees_the_relay_in_the_queue_approves_it_and_plays_it_now(client, engine, runtime, world):
    relay_id = make_relay(runtime, world.commune_a, status="submitted")
    text_id = make_bulletin(runtime, world.commune_a, title="Tin đọc")
    csrf = sign_in(client, "duyet")
    queue = client.get("/review").text
    assert f'id="b-{text_id}"' in queue
    start = queue.index(f'id="b-{relay_id}"')
    card = queue[start : queue.find("</li>", start)]  # the relay's own card, not the text's beside it
    assert "Tiếp sóng · 30 phút" in card
    assert f'href="{STREAM}" target="_blank" rel="noopener noreferrer"' in card and "trong 30 phút" in card
    assert "<audio" not in card
    assert client.post(f"/review/{relay_id}/approve", data={"csrf_token": csrf}).status_code == 303

    page = client.get(f"/bulletins/{relay_id}").text
    assert f'href="/schedule/new?bulletin_id={relay_id}">Lên lịch phát</a>' in page  # scheduled like a recording
    assert 'id="relay-no-schedule"' not in page
    assert f'action="/bulletins/{relay_id}/play"' in page and "Tiếp sóng trong 30 phút trên các xã đã chọn" in page
    runtime.bus = RecordingPublisher()  # stands for the broker: acknowledges every command
    played = client.post(f"/bulletins/{relay_id}/play", data={"csrf_token": csrf, "unit_ids": world.commune_a})
    assert played.status_code == 303 and played.headers["location"].startswith("/history/")
    broadcast_id = played.headers["location"].split("/")[2]
    with Session(engine) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert (broadcast.bulletin_id, broadcast.audio_asset_id) == (relay_id, None)
        deliveries = session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast_id)).all()
        assert sorted(d.cluster_id for d in deliveries) == world.clusters_a
    assert sorted(cluster for cluster, _ in runtime.bus.sent) == world.clusters_a
    for _, command in runtime.bus.sent:
        validate(Channel.COMMAND, command)
        assert command["play"]["stream"] == {"url": STREAM, "duration_s": 1800} and "audio" not in command["play"]
    assert client.get(played.headers["location"]).status_code == 200
    assert f'<a href="/history/{broadcast_id}">' in client.get(f"/bulletins/{relay_id}").text


def test_play_at_a_set_time_tells_the_clusters_when_and_refuses_a_time_gone_or_too_far(client, engine, runtime, world):
    """'Bắt đầu lúc' on the play form: the 18:00 news relayed, set up in the afternoon (local time)."""
    from datetime import timedelta

    from broadcast_server.statistics.periods import LOCAL_TZ
    from mqtt_contract.times import parse_time

    relay_id = make_relay(runtime, world.commune_a, status="approved")
    csrf = sign_in(client, "duyet")
    runtime.bus = RecordingPublisher()
    now_local = runtime.clock.now().astimezone(LOCAL_TZ)
    form = {"csrf_token": csrf, "unit_ids": world.commune_a}
    for typed, words in (
        ((now_local - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "đã qua"),
        ((now_local + timedelta(days=8)).strftime("%Y-%m-%dT%H:%M"), "tối đa 7 ngày"),
        ("18 giờ chiều", "không đúng dạng"),
    ):
        refused = client.post(f"/bulletins/{relay_id}/play", data={**form, "start_local": typed})
        assert refused.status_code == 422 and words in refused.text, typed
    with Session(engine) as session:
        assert session.exec(select(Broadcast)).all() == []
    assert runtime.bus.sent == []

    start = (now_local + timedelta(hours=3)).replace(second=0, microsecond=0)
    played = client.post(f"/bulletins/{relay_id}/play", data={**form, "start_local": start.strftime("%Y-%m-%dT%H:%M")})
    assert played.status_code == 303, played.text
    broadcast_id = played.headers["location"].split("/")[2]
    with Session(engine) as session:
        assert session.get(Broadcast, broadcast_id).start_at == start  # stored in UTC, the same instant
    for _, command in runtime.bus.sent:
        assert parse_time(command["play"]["start_at"]) == start
    assert f"bắt đầu lúc {start:%H:%M}" in client.get(played.headers["location"]).text


def test_an_approved_relay_is_scheduled_every_day_at_1800_and_shown_as_a_relay(client, engine, runtime, world):
    """The VOV news at 18:00 every day: offered on the form, saved, and shown as "Tiếp sóng · 30 phút"."""
    from datetime import date, timedelta

    from broadcast_server.models import ProgrammeItem, Slot

    relay_id = make_relay(runtime, world.commune_a, status="approved")
    csrf = sign_in(client, "duyet")
    form = client.get(f"/schedule/new?bulletin_id={relay_id}").text
    assert f'<option value="{relay_id}" selected>Tiếp sóng thời sự VOV1 (Tiếp sóng · 30 phút)</option>' in form

    monday = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    every_day = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    data = {
        "csrf_token": csrf,
        "bulletin_id": relay_id,
        "start_date": monday.isoformat(),
        "start_time": "18:00",
        "repeat": "weekly",
        "weekdays": every_day,
        "unit_ids": [world.commune_a],
        "action": "save",
    }
    saved = client.post("/schedule/new", data=data)
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"], saved.text
    with Session(engine) as session:
        slot = session.exec(select(Slot)).one()
        assert (slot.start_time, slot.rule) == ("18:00", "FREQ=WEEKLY;BYDAY=" + ",".join(every_day))
        item = session.exec(select(ProgrammeItem)).one()
        assert (item.bulletin_id, item.names_bulletin) == (relay_id, True)

    week = client.get(f"/schedule?week={monday.isoformat()}").text
    assert week.count("Tiếp sóng · 30 phút") == 7  # one airing a day, said as a relay and its length
    assert "30 phút 00 giây" not in week
    slot_page = client.get(f"/schedule/slots/{slot.id}").text
    assert 'Tiếp sóng thời sự VOV1 <small class="relay">· Tiếp sóng · 30 phút</small>' in slot_page

    # A second relay at 18:10 on the same commune clashes with the first's 30 minutes, before anything is saved.
    other = make_relay(runtime, world.commune_a, status="approved", title="Tiếp sóng đài tỉnh")
    clash = client.post(
        "/schedule/new",
        data={**data, "bulletin_id": other, "start_time": "18:10", "repeat": "once", "weekdays": [], "action": "save"},
    )
    assert clash.status_code == 200 and "Trùng giờ với chương trình khác" in clash.text
    assert "chồng 1200 giây" in clash.text
    with Session(engine) as session:
        assert len(session.exec(select(Slot)).all()) == 1
