"""Phát khẩn cấp: the confirmation says how many clusters are reached and interrupted; sending dispatches."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from broadcast_server.db.session import session_scope
from broadcast_server.models import AuditEntry, Broadcast, Bulletin, ClusterState, Delivery, Heartbeat
from tests.console.conftest import sign_in


def _online_and_playing(engine, online: list[str], playing: list[str]) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for cluster_id in online:
            session.add(ClusterState(cluster_id=cluster_id, online=True, changed_at=now, last_seen_at=now))
            session.add(
                Heartbeat(
                    cluster_id=cluster_id,
                    sent_at=now,
                    received_at=now,
                    seq=1,
                    uptime_s=60,
                    playing="entry-1" if cluster_id in playing else None,
                )
            )


def _figures(html: str) -> list[int]:
    section = html[html.index('id="estimate"') :]
    return [int(n) for n in re.findall(r"<strong[^>]*>(\d+)</strong>", section)[:3]]


def _confirm_new(client, csrf: str, world, title: str, text: str):
    """A new emergency text for commune A, up to the confirmation page."""
    data = {"csrf_token": csrf, "title": title, "text": text, "unit_ids": world.commune_a}
    return client.post("/emergency/confirm", data=data)


def test_confirmation_counts_targeted_online_and_playing_clusters(client, engine, world):
    online = world.clusters_a[:10]
    _online_and_playing(engine, online, playing=online[:3])
    csrf = sign_in(client, "duyet")
    form = client.get("/emergency").text
    assert "Phát khẩn cấp" in form
    confirm = _confirm_new(client, csrf, world, "Cảnh báo lũ", "Nước sông đang lên nhanh, bà con di dời ngay.")
    assert confirm.status_code == 200, confirm.text
    assert _figures(confirm.text) == [len(world.clusters_a), 10, 3]
    assert "sẽ bị ngắt" in confirm.text and 'id="held-off"' not in confirm.text
    with Session(engine) as session:
        bulletin = session.exec(select(Bulletin)).one()
        assert (bulletin.priority, bulletin.status) == ("emergency", "approved")  # no queue, audited
        actions = {e.action for e in session.exec(select(AuditEntry).where(AuditEntry.object_id == bulletin.id))}
        assert {"bulletin.create", "bulletin.emergency_skip_queue"} <= actions
    # Without a broker connection nothing is sent, and the page says why.
    refused = client.post(
        "/emergency/send", data={"csrf_token": csrf, "bulletin_id": bulletin.id, "unit_ids": world.commune_a}
    )
    assert refused.status_code == 422 and "MQTT" in refused.text
    with Session(engine) as session:
        assert session.exec(select(Delivery)).all() == []


@pytest.mark.broker
def test_send_dispatches_through_the_broker(client, runtime, engine, world):
    from bcast.broker import LocalBroker

    with LocalBroker() as broker:
        runtime.settings.mqtt_port = broker.port
        runtime.settings.mqtt_host = broker.host
        runtime.start()
        try:
            csrf = sign_in(client, "admin")
            confirm = client.post(
                "/emergency/confirm",
                data={
                    "csrf_token": csrf,
                    "text": "Diễn tập phòng cháy.",
                    "unit_ids": [world.commune_a, world.commune_b],
                    "repeat_times": 3,
                    "repeat_interval_min": 15,
                    "full_volume": "1",
                },
            )
            assert "3 lần</strong>, cách nhau 15 phút" in confirm.text and "âm lượng tối đa" in confirm.text
            bulletin_id = re.search(r'name="bulletin_id" value="([0-9a-f]+)"', confirm.text).group(1)
            hidden = dict(
                re.findall(r'name="(repeat_times|repeat_interval_min|full_volume)" value="([^"]*)"', confirm.text)
            )
            sent = client.post(
                "/emergency/send",
                data={
                    "csrf_token": csrf,
                    "bulletin_id": bulletin_id,
                    "unit_ids": [world.commune_a, world.commune_b],
                    **hidden,  # what the confirmation page carries to the send button
                },
            )
            assert sent.status_code == 303 and sent.headers["location"].startswith("/history/")
            broadcast_id = sent.headers["location"].split("/")[-1]
        finally:
            runtime.stop()
    with Session(engine) as session:
        deliveries = session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast_id)).all()
        assert len(deliveries) == len(world.clusters_a) + len(world.clusters_b)
        assert {d.state for d in deliveries} == {"sent"}  # the broker acknowledged every command
        broadcast = session.get(Broadcast, broadcast_id)
        assert (broadcast.repeat_times, broadcast.repeat_interval_s, broadcast.volume) == (3, 900, 100)
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.create")).one()
        assert (entry.object_id, entry.actor) == (broadcast_id, "admin")


def test_a_normal_bulletin_cannot_be_sent_as_an_emergency(client, engine, runtime, world):
    from tests.console.conftest import make_bulletin

    normal = make_bulletin(runtime, world.commune_a, status="approved")
    csrf = sign_in(client, "duyet")
    response = client.post(
        "/emergency/send", data={"csrf_token": csrf, "bulletin_id": normal, "unit_ids": world.commune_a}
    )
    assert response.status_code == 422


def test_confirmation_warns_of_clusters_whose_amplifier_a_technician_holds_off(client, engine, world):
    online = world.clusters_a[:4]
    _online_and_playing(engine, online, playing=[])
    with session_scope(engine) as session:
        session.get(ClusterState, online[0]).amplifier = "off"
        session.add(ClusterState(cluster_id=world.clusters_a[5], online=False, amplifier="off"))
        session.get(ClusterState, online[1]).amplifier = "fault"  # faulty, not held off: not counted here
    csrf = sign_in(client, "duyet")
    confirm = _confirm_new(client, csrf, world, "Cảnh báo cháy rừng", "Cháy rừng gần thôn.")
    assert confirm.status_code == 200, confirm.text
    held = confirm.text[confirm.text.index('id="held-off"') :]
    assert re.match(r'id="held-off"><strong class="bad-text">2</strong> cụm đang bị kỹ thuật viên tắt ampli', held)


def test_the_emergency_page_lists_the_cap_alerts_received(client, engine, world, tmp_path):
    from broadcast_server.cap.service import SpeechSettings, receive_cap
    from tests.cap.samples import alert
    from tests.server.test_dispatch_and_ingest import RecordingPublisher

    speech = SpeechSettings(tmp_path / "audio", "vi", -16.0, 300)
    everywhere = "<circle>11.6,106.6 200</circle>"  # the test fleet (Hớn Quản) lies inside
    with session_scope(engine) as session:
        aired = receive_cap(
            session, RecordingPublisher(), None, alert("C-1", area=everywhere), speech, now=datetime.now(UTC)
        )
        receive_cap(session, RecordingPublisher(), None, alert("C-2", status="Exercise"), speech, now=datetime.now(UTC))
    sign_in(client, "duyet")
    page = client.get("/emergency").text
    listed = page[page.index('id="cap-alerts"') :]
    assert "Đã phát khẩn cấp" in listed and "Chỉ lưu, không phát" in listed
    assert f'href="/history/{aired.broadcast_id}"' in listed and "C-1" in listed and "C-2" in listed


def test_the_cap_feeds_and_their_problems_are_shown_on_the_emergency_page_and_home(
    client, runtime, engine, world, monkeypatch
):
    from broadcast_server.cap.feed_state import FeedLog, FeedProblem

    sign_in(client, "duyet")
    assert 'id="cap-feeds"' not in client.get("/emergency").text  # no feed configured: nothing to show
    assert "nguồn cảnh báo CAP" not in client.get("/").text
    feeds = ("http://canhbao.example/feed", "http://tin.example/rss")
    monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={"cap_feeds": " ".join(feeds)}))
    now = runtime.clock.now()
    log = FeedLog(engine)
    for url in feeds:
        log.polled(url, now)
        log.read(url, now, entries=3)
    log.alert_handled(feeds[1], now)
    log.failed(feeds[0], now, FeedProblem.ALERT_NOT_FETCHED, f"{feeds[0]}/7.xml answered HTTP 500")
    section = client.get("/emergency").text.split('id="cap-feeds"')[1].split("</section>")[0]
    first, second = section.split("<tr><td")[1:]
    assert "Đọc được, có cảnh báo không lấy được" in first and "Không lấy được một cảnh báo (sẽ thử lại)" in first
    assert "answered HTTP 500" in first
    assert "Đọc bình thường" in second and re.search(r'class="num">1 <small>\(mới nhất', second)
    home = client.get("/").text
    assert re.search(r"<strong>1/2</strong><span>nguồn cảnh báo CAP có lỗi</span>", home)


def test_a_typed_emergency_is_read_in_the_voice_and_speed_chosen(client, engine, world):
    csrf = sign_in(client, "duyet")
    assert '<select name="voice">' in client.get("/emergency").text
    data = {"csrf_token": csrf, "title": "Cảnh báo lũ", "text": "Nước sông đang lên, bà con di dời ngay."}
    data |= {"unit_ids": world.commune_a, "voice": "vi-vn-x-central", "speed": "slow"}
    assert client.post("/emergency/confirm", data=data).status_code == 200
    with Session(engine) as session:
        [bulletin] = session.exec(select(Bulletin)).all()
        assert (bulletin.priority, bulletin.voice, bulletin.rate_wpm) == ("emergency", "vi-vn-x-central", 140)
    refused = client.post("/emergency/confirm", data={**data, "voice": "fr", "title": "Giữ lại"})
    assert refused.status_code == 422 and "Giọng đọc đã chọn không có" in refused.text and "Giữ lại" in refused.text
    with Session(engine) as session:
        assert len(session.exec(select(Bulletin)).all()) == 1
