"""Bản tin and Duyệt tin: write, preview the spoken form and its speech, upload a recording, approve or return."""

from __future__ import annotations

import re
import subprocess

from sqlmodel import Session, select

from broadcast_server.models import AuditEntry, Bulletin
from tests.console.conftest import make_bulletin, sign_in

TEXT = "Ngày 15/3/2026, UBND xã tổ chức tiêm chủng cho 120 trẻ em."


def test_broadcaster_previews_listens_and_submits(client, engine, world):
    csrf = sign_in(client, "xa-a")
    preview = client.post(
        "/bulletins/new", data={"csrf_token": csrf, "title": "Tiêm chủng", "text": TEXT, "action": "preview"}
    )
    assert preview.status_code == 200
    spoken = re.search(r'<p class="spoken">([^<]+)</p>', preview.text).group(1)
    # The normaliser's spoken form: digits, dates and abbreviations read out as words.
    assert "mười lăm tháng ba" in spoken and "một trăm hai mươi" in spoken and "ủy ban nhân dân" in spoken.lower()
    assert "15/3" not in spoken
    audio_src = re.search(r'src="(/bulletins/preview/[0-9a-f]{64}\.mp3)"', preview.text).group(1)
    audio = client.get(audio_src)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content[:3] == b"ID3" or audio.content[0] == 0xFF
    assert len(audio.content) > 2000
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []  # a preview stores nothing

    submitted = client.post(
        "/bulletins/new", data={"csrf_token": csrf, "title": "Tiêm chủng", "text": TEXT, "action": "submit"}
    )
    assert submitted.status_code == 303
    bulletin_id = submitted.headers["location"].split("/")[2].split("?")[0]
    with Session(engine) as session:
        bulletin = session.get(Bulletin, bulletin_id)
        assert (bulletin.status, bulletin.owner_unit_id, bulletin.kind) == ("submitted", world.commune_a, "text")
        actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.object_id == bulletin_id))]
        assert actions == ["bulletin.create", "bulletin.submit"]
    page = client.get(f"/bulletins/{bulletin_id}")
    assert "Chờ duyệt" in page.text and "Tiêm chủng" in page.text


def test_preview_audio_needs_the_right_to_draft(client, runtime):
    sign_in(client, "xem")
    assert client.get("/bulletins/preview/" + "0" * 64 + ".mp3").status_code == 403


def test_empty_text_is_refused_with_the_form_kept(client, engine):
    csrf = sign_in(client, "xa-a")
    response = client.post(
        "/bulletins/new", data={"csrf_token": csrf, "title": "Tiêu đề giữ lại", "text": "  ", "action": "submit"}
    )
    assert response.status_code == 422 and "Hãy nhập nội dung" in response.text and "Tiêu đề giữ lại" in response.text


def test_upload_of_a_phone_recording(client, engine, tmp_path, world):
    recording = tmp_path / "ghi-am.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "aac",
            str(recording),
        ],
        check=True,
    )
    csrf = sign_in(client, "xa-a")
    with recording.open("rb") as handle:
        response = client.post(
            "/bulletins/upload",
            data={"csrf_token": csrf, "title": "Ghi âm họp xã", "action": "submit"},
            files={"recording": ("ghi-am.m4a", handle, "audio/mp4")},
        )
    assert response.status_code == 303, response.text
    with Session(engine) as session:
        bulletin = session.exec(select(Bulletin)).one()
        assert (bulletin.kind, bulletin.status, bulletin.owner_unit_id) == ("audio", "submitted", world.commune_a)
        assert bulletin.audio_asset_id


def test_upload_that_is_not_audio_is_refused(client, engine):
    csrf = sign_in(client, "xa-a")
    response = client.post(
        "/bulletins/upload",
        data={"csrf_token": csrf, "title": "Không phải âm thanh", "action": "save"},
        files={"recording": ("tin.mp3", b"day khong phai am thanh" * 100, "audio/mpeg")},
    )
    assert response.status_code == 422 and "Không dùng được tệp này" in response.text
    wrong_type = client.post(
        "/bulletins/upload",
        data={"csrf_token": csrf, "title": "Tài liệu", "action": "save"},
        files={"recording": ("tai-lieu.docx", b"PK" * 100, "application/octet-stream")},
    )
    assert wrong_type.status_code == 422
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []


def test_approver_approves_or_returns_with_a_comment(client, engine, runtime, world):
    first = make_bulletin(runtime, world.commune_a, title="Tin thứ nhất")
    second = make_bulletin(runtime, world.commune_b, title="Tin thứ hai")
    csrf = sign_in(client, "duyet")
    queue = client.get("/review").text
    assert "Tin thứ nhất" in queue and "Tin thứ hai" in queue and "2 bản tin đang chờ duyệt" in queue
    assert client.post(f"/review/{first}/approve", data={"csrf_token": csrf}).status_code == 303
    no_comment = client.post(f"/review/{second}/return", data={"csrf_token": csrf, "comment": " "})
    assert no_comment.status_code == 422 and "ghi rõ cần sửa gì" in no_comment.text
    returned = client.post(f"/review/{second}/return", data={"csrf_token": csrf, "comment": "Sửa lại giờ họp."})
    assert returned.status_code == 303
    with Session(engine) as session:
        assert session.get(Bulletin, first).status == "approved"
        row = session.get(Bulletin, second)
        assert (row.status, row.review_comment) == ("returned", "Sửa lại giờ họp.")
    assert "Không có bản tin nào chờ duyệt" in client.get("/review").text
    again = client.post(f"/review/{first}/approve", data={"csrf_token": csrf})
    assert again.status_code == 422  # already approved: nothing changes
    client.cookies.clear()
    sign_in(client, "xa-b")
    assert "Sửa lại giờ họp." in client.get("/bulletins?status=returned").text


def _duration_of(engine, bulletin_id: str) -> tuple[str, float]:
    from broadcast_server.models import AudioAsset

    with Session(engine) as session:
        bulletin = session.get(Bulletin, bulletin_id)
        return bulletin.audio_asset_id, session.get(AudioAsset, bulletin.audio_asset_id).duration_s


def test_the_broadcaster_chooses_the_voice_and_speed_and_an_edit_keeps_them(client, engine, world):
    """A southern commune picks the southern voice, read slowly: stored, shown, heard longer than at the
    engine's speed; an edit of the title alone keeps both (no new speech); a new speed makes new speech."""
    csrf = sign_in(client, "xa-a")
    form = client.get("/bulletins/new").text
    assert '<option value="vi" selected>Giọng nam miền Bắc</option>' in form  # BCAST_TTS_VOICE's default
    assert '<option value="vi-vn-x-south">Giọng nam miền Nam</option>' in form
    assert '<option value="normal" selected>Vừa' in form and '<option value="slow">Chậm (140 từ/phút)' in form
    data = {"csrf_token": csrf, "title": "Tiêm chủng", "text": TEXT, "voice": "vi-vn-x-south"}
    preview = client.post("/bulletins/new", data={**data, "speed": "slow", "action": "preview"})
    assert (
        '<option value="vi-vn-x-south" selected>' in preview.text and '<option value="slow" selected>' in preview.text
    )
    slow = client.post("/bulletins/new", data={**data, "speed": "slow", "action": "save"})
    usual = client.post("/bulletins/new", data={**data, "speed": "normal", "action": "save"})
    slow_id, usual_id = (r.headers["location"].split("/")[2].split("?")[0] for r in (slow, usual))
    with Session(engine) as session:
        row = session.get(Bulletin, slow_id)
        assert (row.voice, row.rate_wpm) == ("vi-vn-x-south", 140)
        assert session.get(Bulletin, usual_id).rate_wpm is None
    slow_asset, slow_s = _duration_of(engine, slow_id)
    _, usual_s = _duration_of(engine, usual_id)
    assert slow_s > usual_s * 1.1  # 140 words a minute against espeak-ng's 175
    assert "Giọng nam miền Nam, đọc chậm" in client.get(f"/bulletins/{slow_id}").text

    edited = client.post(
        f"/bulletins/{slow_id}/edit", data={"csrf_token": csrf, "title": "Tiêm chủng đợt 2", "text": TEXT}
    )
    assert edited.status_code == 303
    assert _duration_of(engine, slow_id)[0] == slow_asset  # neither voice nor speed sent: kept, no new speech
    faster = {"csrf_token": csrf, "title": "Tiêm chủng đợt 2", "text": TEXT, "voice": "vi-vn-x-south", "speed": "fast"}
    assert client.post(f"/bulletins/{slow_id}/edit", data=faster).status_code == 303
    with Session(engine) as session:
        assert session.get(Bulletin, slow_id).rate_wpm == 210
    assert _duration_of(engine, slow_id)[1] < usual_s


def test_a_voice_or_speed_the_server_does_not_offer_is_refused_with_the_form_kept(client, engine):
    csrf = sign_in(client, "xa-a")
    base = {"csrf_token": csrf, "title": "Giữ tiêu đề", "text": TEXT, "action": "save"}
    for choice, problem in [
        ({"voice": "en-us"}, "Giọng đọc đã chọn không có trên máy chủ này"),
        ({"speed": "rat-nhanh"}, "Tốc độ đọc không hợp lệ"),
        ({"speed": "900"}, "Tốc độ đọc không hợp lệ"),
    ]:
        refused = client.post("/bulletins/new", data={**base, **choice})
        assert refused.status_code == 422 and problem in refused.text and "Giữ tiêu đề" in refused.text
    with Session(engine) as session:
        assert session.exec(select(Bulletin)).all() == []


def test_a_bulletin_in_a_voice_the_engine_no_longer_has_can_still_be_retitled(client, engine, runtime, world):
    """The engine was changed since the bulletin was read: its voice stays offered, and a title edit goes through."""
    bulletin_id = make_bulletin(runtime, world.commune_a, status="draft", title="Tin cũ")
    with Session(engine) as session:
        row = session.get(Bulletin, bulletin_id)
        row.voice = "giong-cu"
        session.add(row)
        session.commit()
    csrf = sign_in(client, "xa-a")
    assert '<option value="giong-cu" selected>giong-cu</option>' in client.get(f"/bulletins/{bulletin_id}").text
    form = {"csrf_token": csrf, "title": "Tin cũ, đã sửa", "voice": "giong-cu", "speed": "normal"}
    with Session(engine) as session:
        form["text"] = session.get(Bulletin, bulletin_id).text
    assert client.post(f"/bulletins/{bulletin_id}/edit", data=form).status_code == 303
    with Session(engine) as session:
        assert (session.get(Bulletin, bulletin_id).title, session.get(Bulletin, bulletin_id).voice) == (
            "Tin cũ, đã sửa",
            "giong-cu",
        )
    refused = client.post(f"/bulletins/{bulletin_id}/edit", data={**form, "voice": "giong-khac"})
    assert refused.status_code == 422 and "Giọng đọc đã chọn không có" in refused.text


def test_an_edit_can_be_heard_before_it_is_saved(client, engine, runtime, world):
    bulletin_id = make_bulletin(runtime, world.commune_a, status="returned", title="Họp dân")
    with Session(engine) as session:
        before = session.get(Bulletin, bulletin_id).model_dump()
    csrf = sign_in(client, "xa-a")
    typed = {"csrf_token": csrf, "title": "Họp dân thôn 3", "text": TEXT, "voice": "vi-vn-x-south", "speed": "slow"}
    heard = client.post(f"/bulletins/{bulletin_id}/edit", data={**typed, "action": "preview"})
    assert heard.status_code == 200
    assert '<details class="card" id="edit" open>' in heard.text and 'value="Họp dân thôn 3"' in heard.text
    assert '<option value="vi-vn-x-south" selected>' in heard.text and '<option value="slow" selected>' in heard.text
    assert "mười lăm tháng ba" in heard.text  # the spoken form of the typed text
    audio = client.get(re.search(r'src="(/bulletins/preview/[0-9a-f]{64}\.mp3)"', heard.text).group(1))
    assert audio.status_code == 200 and len(audio.content) > 2000
    empty = client.post(f"/bulletins/{bulletin_id}/edit", data={**typed, "text": " ", "action": "preview"})
    assert empty.status_code == 422 and "Hãy nhập nội dung bản tin." in empty.text
    with Session(engine) as session:
        assert session.get(Bulletin, bulletin_id).model_dump() == before  # a preview changes nothing
