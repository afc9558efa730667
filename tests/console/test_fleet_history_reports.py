"""Cụm loa, Lịch sử phát, Báo cáo, Nhật ký: what each shows, limited to the user's area."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from broadcast_server.db.session import session_scope
from broadcast_server.models import ClusterState, Delivery
from broadcast_server.services.dispatch import Target, create_broadcast
from tests.console.conftest import COMMUNE_A, COMMUNE_B, make_bulletin, set_presence, sign_in
from tests.server.test_dispatch_and_ingest import RecordingPublisher

OFFLINE_FILL = "fill='#d62728'"


def test_fleet_page_lists_offline_clusters_first_and_draws_them_red(client, engine, world):
    since = datetime.now(UTC) - timedelta(hours=2)
    down = world.clusters_a[:2]
    set_presence(engine, world.clusters_a[2:] + world.clusters_b, down, since=since)
    sign_in(client, "kythuat")
    page = client.get("/fleet").text
    assert f"<strong>{len(world.clusters_a) + len(world.clusters_b) - 2}</strong>/" in page
    offline_section = page[page.index('id="offline-list"') : page.index("<h2>Bản đồ</h2>")]
    for cluster_id in down:
        assert cluster_id in offline_section
    assert "Không nhận được tín hiệu định kỳ" in offline_section and "amplifier overheated" in offline_section
    assert page.count(OFFLINE_FILL) == 2
    assert page.count("<circle") == len(world.clusters_a) + len(world.clusters_b)
    assert "<image" not in page  # no tile server configured: a plain base, nothing fetched from outside

    client.cookies.clear()
    sign_in(client, "xa-b")
    theirs = client.get("/fleet").text
    assert OFFLINE_FILL not in theirs and down[0] not in theirs
    assert theirs.count("<circle") == len(world.clusters_b)


def test_fleet_page_lists_the_clusters_that_need_a_technician_for_other_reasons(client, engine, world):
    """Online is not enough: an amplifier fault or one held off, a box that refuses every command for want of the
    server's key (not enrolled) and a clock far off are listed too, each commune seeing its own."""
    from speaker_agent.command_auth import NO_TRUSTED_KEY

    since = datetime.now(UTC) - timedelta(hours=1)
    set_presence(engine, world.clusters_a + world.clusters_b, [], since=since)
    amp, unkeyed, clock, held = world.clusters_a[0], world.clusters_a[1], world.clusters_b[0], world.clusters_a[2]
    with session_scope(engine) as session:
        session.get(ClusterState, amp).amplifier = "fault"
        session.get(ClusterState, held).amplifier = "off"
        refusing = session.get(ClusterState, unkeyed)
        refusing.last_error, refusing.last_error_at = f"refused 2 command(s); last: {NO_TRUSTED_KEY}", since
        session.get(ClusterState, clock).clock_offset_s = 42.5
    sign_in(client, "kythuat")
    page = client.get("/fleet").text
    attention = page[page.index('id="attention"') : page.index("<h2>Bản đồ</h2>")]
    assert "Ampli báo hỏng (1)" in attention and "chưa có khóa của máy chủ (chưa đăng ký) (1)" in attention
    assert "Đồng hồ lệch (1)" in attention and "Lệch +42,5 giây" in attention
    assert "Ampli đang tắt theo lệnh kỹ thuật viên: không phát, kể cả tin khẩn cấp (1)" in attention
    for cluster_id in (amp, unkeyed, clock, held):
        assert cluster_id in attention

    client.cookies.clear()
    sign_in(client, "xa-b")
    theirs = client.get("/fleet").text
    attention = theirs[theirs.index('id="attention"') : theirs.index("<h2>Bản đồ</h2>")]
    assert clock in attention and amp not in attention and unkeyed not in attention and held not in attention
    assert "Ampli báo hỏng" not in attention


def test_fleet_map_uses_a_tile_server_only_when_configured(client, runtime, world):
    runtime.settings.map_tile_url = "http://tiles.local/{z}/{x}/{y}.png"
    sign_in(client, "admin")
    page = client.get("/fleet").text
    assert "<image href='http://tiles.local/" in page


def _broadcast(runtime, world, *, to_b: bool = True) -> str:
    bulletin = make_bulletin(runtime, world.commune_a, status="approved", title="Thông báo lịch cắt điện")
    with session_scope(runtime.engine) as session:
        units = (world.commune_a, world.commune_b) if to_b else (world.commune_a,)
        broadcast, _ = create_broadcast(session, bulletin, Target(units), ttl_s=600)
        played = [*world.clusters_a[:5], *world.clusters_b[:1]]
        session.exec(
            update(Delivery)
            .where(Delivery.broadcast_id == broadcast.id, col(Delivery.cluster_id).in_(played))
            .values(state="played")
        )
        return broadcast.id


def test_history_shows_coverage_per_commune(client, runtime, world):
    broadcast_id = _broadcast(runtime, world)
    sign_in(client, "duyet")
    listing = client.get("/history").text
    assert "Thông báo lịch cắt điện" in listing
    assert f"6 / {len(world.clusters_a) + len(world.clusters_b)}" in listing
    page = client.get(f"/history/{broadcast_id}").text
    assert f'<tr><td>{COMMUNE_A}</td><td class="num">{len(world.clusters_a)}</td><td class="num">5</td>' in page
    assert f'<tr><td>{COMMUNE_B}</td><td class="num">{len(world.clusters_b)}</td><td class="num">1</td>' in page

    client.cookies.clear()
    sign_in(client, "xa-b")
    mine = client.get(f"/history/{broadcast_id}").text
    assert COMMUNE_B in mine and f"<td>{COMMUNE_A}</td>" not in mine and "Tổng cộng" not in mine
    assert "1 / 15" in client.get("/history").text  # its own commune's clusters only


def test_history_of_another_commune_is_refused(client, runtime, world):
    only_a = _broadcast(runtime, world, to_b=False)
    sign_in(client, "xa-b")
    assert client.get(f"/history/{only_a}").status_code == 403
    assert "Thông báo lịch cắt điện" not in client.get("/history").text


def test_reports_draw_charts_and_download_files_of_the_users_area(client, runtime, world):
    _broadcast(runtime, world)
    sign_in(client, "admin")
    page = client.get("/reports").text
    assert page.count("<svg id='c-") == 3 and "Số bài đã phát" in page
    assert COMMUNE_A in page and COMMUNE_B in page
    quarter = page.split("/reports/quarterly.csv?quarter=")[1].split('"')[0]
    xlsx = client.get(f"/reports/quarterly.xlsx?quarter={quarter}")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    rows = list(csv.DictReader(io.StringIO(client.get(f"/reports/quarterly.csv?quarter={quarter}").text)))
    assert {r["commune"] for r in rows} == {COMMUNE_A, COMMUNE_B}
    client.cookies.clear()
    sign_in(client, "xa-a")
    rows = list(csv.DictReader(io.StringIO(client.get(f"/reports/quarterly.csv?quarter={quarter}").text)))
    assert [r["commune"] for r in rows] == [COMMUNE_A]
    assert COMMUNE_B not in client.get("/reports").text
    assert client.get("/reports/quarterly.csv?quarter=2026Q9").status_code == 422


def test_audit_log_is_read_only_and_scoped(client, runtime, engine, world):
    csrf = sign_in(client, "xa-a")
    client.post("/bulletins/new", data={"csrf_token": csrf, "title": "Tin A", "text": "Nội dung.", "action": "save"})
    page = client.get("/audit").text
    page = page[page.index('id="audit"') :]
    assert "Tạo bản tin" in page and "Đăng nhập" in page and "xa-a" in page
    assert client.post("/audit", data={"csrf_token": csrf}).status_code == 405
    client.cookies.clear()
    sign_in(client, "xa-b")
    theirs = client.get("/audit").text
    theirs = theirs[theirs.index('id="audit"') :]
    assert "Tạo bản tin" not in theirs and "xa-b" in theirs
    with Session(engine) as session:
        assert session.get(Delivery, 1) is None  # nothing was dispatched by any of this


def test_history_lists_scheduled_airings_with_their_coverage(client, runtime, world):
    """A pushed airing (written as a push records it) with reports: listed once due, its page per commune."""
    from urllib.parse import quote

    from broadcast_server.models import PlaybackReport, ScheduledAiring, ScheduledAiringTarget

    bulletin_id = make_bulletin(runtime, world.district_id, status="approved", title="Chuyên mục Chuyển đổi số")
    due = datetime.now(UTC) - timedelta(hours=2)
    airing_id = f"chuyen-doi-so@{due:%Y%m%dT%H%MZ}#0"
    later_id = f"chuyen-doi-so@{due + timedelta(days=1):%Y%m%dT%H%MZ}#0"  # not due yet: not listed
    sent = world.clusters_a + world.clusters_b
    with session_scope(runtime.engine) as session:
        for id_, at in ((airing_id, due), (later_id, due + timedelta(days=1))):
            session.add(
                ScheduledAiring(
                    id=id_, slot_id="chuyen-doi-so", position=0, bulletin_id=bulletin_id,
                    title="Chuyên mục Chuyển đổi số", priority="normal", start_at=at,
                )
            )  # fmt: skip
            session.flush()
            for cluster_id in sent:
                session.add(ScheduledAiringTarget(airing_id=id_, cluster_id=cluster_id))

        def report(cluster_id: str, status: str, minutes: int, **fields) -> None:
            session.add(
                PlaybackReport(
                    id=f"r-{cluster_id}-{status}-{minutes}", cluster_id=cluster_id, command_id=airing_id,
                    status=status, reported_at=due + timedelta(minutes=minutes), **fields,
                )
            )  # fmt: skip

        report(world.clusters_a[0], "played", 1, played_s=30.0, late_s=0.0)
        report(world.clusters_a[1], "stopped", 1, played_s=5.0, reason="interrupted; on_interrupt=resume")
        report(world.clusters_a[1], "played", 4, played_s=30.0, late_s=180.0)  # resumed: played, once
        report(world.clusters_b[0], "missed", 16, reason="not played within 900 s")

    sign_in(client, "duyet")
    listing = client.get("/history").text
    assert "Phát theo lịch" in listing and "Chuyên mục Chuyển đổi số" in listing
    assert f"2 / {len(sent)}" in listing
    assert f'href="/history/airings/{quote(airing_id, safe="")}"' in listing
    assert quote(later_id, safe="") not in listing
    page = client.get(f"/history/airings/{quote(airing_id, safe='')}").text
    assert f'<tr><td>{COMMUNE_A}</td><td class="num">{len(world.clusters_a)}</td><td class="num">2</td>' in page
    assert f'<tr><td>{COMMUNE_B}</td><td class="num">{len(world.clusters_b)}</td><td class="num">0</td>' in page
    assert "not played within 900 s" in page
    assert client.get(f"/history/airings/{quote('khong-co@20261123T1015Z#0', safe='')}").status_code == 404

    client.cookies.clear()
    sign_in(client, "xa-b")
    assert f"0 / {len(world.clusters_b)}" in client.get("/history").text  # its own commune's clusters only
    mine = client.get(f"/history/airings/{quote(airing_id, safe='')}").text
    assert COMMUNE_B in mine and f"<td>{COMMUNE_A}</td>" not in mine


def test_a_broadcast_is_stopped_from_its_page_by_who_may_send_it(client, runtime, world):
    broadcast_id = _broadcast(runtime, world)  # to both communes; 6 clusters have played, the rest queued
    runtime.bus = RecordingPublisher()  # stands for the broker: acknowledges every command
    unfinished = len(world.clusters_a) + len(world.clusters_b) - 6
    for username in ("xa-b", "duyet-a"):  # a broadcaster; an approver of commune A only (it went to B too)
        client.cookies.clear()
        csrf = sign_in(client, username)
        page = client.get(f"/history/{broadcast_id}")
        assert page.status_code == 200 and 'id="stop"' not in page.text, username
        assert client.post(f"/history/{broadcast_id}/stop", data={"csrf_token": csrf}).status_code == 403
    assert runtime.bus.sent == []

    client.cookies.clear()
    csrf = sign_in(client, "duyet")
    page = client.get(f"/history/{broadcast_id}").text
    assert 'id="stop"' in page and f"{unfinished} cụm loa chưa phát xong" in page
    answer = client.post(f"/history/{broadcast_id}/stop", data={"csrf_token": csrf})
    assert answer.status_code == 303
    after = client.get(answer.headers["location"]).text
    assert f"Đã gửi lệnh dừng tới {unfinished} cụm loa; {unfinished} lệnh phát chưa gửi đã hủy." in after
    assert 'id="stop"' not in after  # nothing left unfinished
    assert len(runtime.bus.sent) == unfinished
    assert {c["stop"]["broadcast_id"] for _, c in runtime.bus.sent} == {broadcast_id}
    assert client.post("/history/no-such/stop", data={"csrf_token": csrf}).status_code == 404
