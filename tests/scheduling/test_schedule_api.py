"""The schedule through the API: the stored schedule as a file, one cluster's preview, and scheduling one bulletin."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import AdminUnit, AuditEntry, Bulletin, Slot
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.scheduling.schedule_file import parse_schedule_yaml

from .conftest import bearer

MONDAY = {"start": "2026-11-23T00:00:00+07:00", "end": "2026-11-24T00:00:00+07:00"}


@pytest.fixture
def api(world, api):
    """The admin's API client (conftest), on the Bình Sơn fleet with the example week applied."""
    return api


def preview_url(cluster_id: str, **times: str) -> str:
    return "/api/v1/schedules/preview?" + urlencode({"cluster_id": cluster_id, **(times or MONDAY)})


def test_the_stored_schedule_comes_back_as_a_schedule_file(api, example_week) -> None:
    response = api.get("/api/v1/schedules")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    exported = parse_schedule_yaml(response.text)
    original = parse_schedule_yaml(example_week)
    assert {s.id for s in exported.slots} == {s.id for s in original.slots}
    assert {p.id for p in exported.programmes} == {p.id for p in original.programmes}


def test_a_coastal_clusters_monday(api, clusters_of) -> None:
    cluster_id = clusters_of("Xã Bình Hải")[0]
    plays = api.get(preview_url(cluster_id)).json()
    assert [p["airing_id"] for p in plays] == [
        "sang-hang-ngay@20261122T2230Z#0",  # 05:30 local: the priority notice first
        "sang-hang-ngay@20261122T2230Z#1",
        "sang-hang-ngay@20261122T2230Z#2",
        "thoi-tiet-ngay-thuong@20261123T0400Z#0",  # 11:00, coastal communes only
        "chieu-hang-ngay@20261123T1000Z#0",  # 17:00
        "chieu-hang-ngay@20261123T1000Z#1",
        "chuyen-doi-so-thu-hai@20261123T1015Z#0",  # 17:15, Mondays
    ]
    first = plays[0]
    assert (first["title"], first["due_at"]) == ("Thông báo của UBND huyện", "2026-11-22T22:30:00Z")
    assert all(p["end_at"] > p["start_at"] >= p["due_at"] for p in plays)
    inland = clusters_of("Xã Bình Trung")[0]
    assert "thoi-tiet-ngay-thuong" not in {p["slot_id"] for p in api.get(preview_url(inland)).json()}


@pytest.mark.parametrize(
    ("times", "status"),
    [
        ({"start": "2026-11-23T00:00:00", "end": "2026-11-24T00:00:00"}, 422),  # no time zone
        ({"start": "2026-11-24T00:00:00+07:00", "end": "2026-11-23T00:00:00+07:00"}, 422),  # backwards
        ({"start": "2026-11-01T00:00:00+07:00", "end": "2026-12-15T00:00:00+07:00"}, 422),  # 44 days
        ({"start": "yesterday", "end": "2026-11-24T00:00:00+07:00"}, 422),
    ],
)
def test_bad_times_are_refused(api, clusters_of, times, status) -> None:
    response = api.get(preview_url(clusters_of("Xã Bình Hải")[0], **times))
    assert response.status_code == status, response.text


def test_unknown_and_out_of_scope_clusters(api, world, clusters_of) -> None:
    from broadcast_server.accounts.principal import Role
    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.models import AdminUnit

    assert api.get(preview_url("khong-co-cum-nay")).status_code == 404
    with session_scope(world) as session:
        hai = session.exec(select(AdminUnit.id).where(AdminUnit.name == "Xã Bình Hải")).one()
        user = create_user(
            session, username="xa-hai", password="mat-khau-dai-du-16", role=Role.VIEWER, scope_unit_id=hai
        )
        token, _ = issue_token(session, user.id, name="api")
    mine = {"Authorization": f"Bearer {token}"}
    assert api.get(preview_url(clusters_of("Xã Bình Hải")[0]), headers=mine).status_code == 200
    assert api.get(preview_url(clusters_of("Xã Bình Châu")[0]), headers=mine).status_code == 403
    api.headers.pop("Authorization")
    assert api.get("/api/v1/schedules").status_code == 401


def _next_monday() -> date:
    today = datetime.now(LOCAL_TZ).date()
    return today + timedelta(days=7 - today.weekday())


def _column_bulletin(world) -> str:
    with session_scope(world) as session:
        return session.exec(select(Bulletin.id).where(Bulletin.title == "Chuyển đổi số")).first()


def _unit(world, name: str) -> int:
    with session_scope(world) as session:
        return session.exec(select(AdminUnit.id).where(AdminUnit.name == name)).one()


def _slots(world) -> set[str]:
    with session_scope(world) as session:
        return set(session.exec(select(Slot.id)))


def test_schedule_an_approved_bulletin_with_its_conflicts(api, world, clusters_of) -> None:
    monday, hai = _next_monday(), _unit(world, "Xã Bình Hải")
    body = {
        "bulletin_id": _column_bulletin(world),
        "start_date": monday.isoformat(),
        "start_time": "17:15",
        "weekdays": ["MO"],
        "unit_ids": [hai],
    }
    before = _slots(world)
    checked = api.post("/api/v1/schedules/slots", json={**body, "dry_run": True})
    assert checked.status_code == 200, checked.text
    answer = checked.json()
    assert (answer["applied"], answer["slot"], answer["clusters"]) == (False, None, len(clusters_of("Xã Bình Hải")))
    clash = {(c["first_slot"], c["rule"]) for c in answer["conflicts"]} | {
        (c["second_slot"], c["rule"]) for c in answer["conflicts"]
    }
    assert ("chuyen-doi-so-thu-hai", "the later entry is queued and starts when the earlier one ends") in clash
    refused = api.post("/api/v1/schedules/slots", json=body)
    assert refused.status_code == 409

    def without_new_id(conflicts: list[dict]) -> list[tuple]:  # each attempt names its unsaved slot afresh
        return [
            (c["rule"], c["clusters"], c["first_at"], {c["first_slot"], c["second_slot"]} & before) for c in conflicts
        ]

    assert without_new_id(refused.json()["conflicts"]) == without_new_id(answer["conflicts"])
    assert _slots(world) == before  # nothing saved until the conflicts are accepted

    saved = api.post("/api/v1/schedules/slots", json={**body, "accept_conflicts": True})
    assert saved.status_code == 201, saved.text
    slot = saved.json()["slot"]
    assert _slots(world) == before | {slot["id"]}
    assert (slot["rule"], slot["start_time"], slot["clusters"]) == ("FREQ=WEEKLY;BYDAY=MO", "17:15", answer["clusters"])
    assert slot["target"]["units"] == ["Quảng Ngãi/Bình Sơn/Xã Bình Hải"]
    week = {"start": f"{monday}T00:00:00+07:00", "end": f"{monday + timedelta(days=1)}T00:00:00+07:00"}
    plays = api.get(preview_url(clusters_of("Xã Bình Hải")[0], **week)).json()
    assert slot["id"] in {p["slot_id"] for p in plays}
    with session_scope(world) as session:
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.create")).one()
        assert (audit.object_id, audit.via) == (slot["id"], "token")


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"start_date": "2020-01-06", "weekdays": []}, 422, "the start time has passed"),
        ({"bulletin_id": "khong-co"}, 422, "does not exist"),
        ({"weekdays": ["MON"]}, 422, "MO"),  # refused by the schema
        ({"start_time": "25:00"}, 422, "time"),
        ({"unit_ids": []}, 422, "at least 1"),
        ({"layer": "overlay"}, 422, "background"),
        ({"until": "2020-01-01"}, 422, "until must not be before the start date"),
        ({"unit_ids": [987654]}, 422, "unit 987654 does not exist"),
    ],
)
def test_bad_requests_say_what_is_wrong_in_english(api, world, change, status, says) -> None:
    body = {
        "bulletin_id": _column_bulletin(world),
        "start_date": _next_monday().isoformat(),
        "start_time": "19:00",
        "weekdays": ["MO"],
        "unit_ids": [_unit(world, "Xã Bình Hải")],
        **change,
    }
    before = _slots(world)
    response = api.post("/api/v1/schedules/slots", json=body)
    assert response.status_code == status and says in response.text, response.text
    assert _slots(world) == before


def test_scheduling_stays_in_the_callers_area(api, world, audio_dir) -> None:
    from broadcast_server.accounts.principal import Role
    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.services.bulletins import create_text_bulletin

    hai, chau = _unit(world, "Xã Bình Hải"), _unit(world, "Xã Bình Châu")
    with session_scope(world) as session:
        user = create_user(
            session, username="duyet-hai", password="mat-khau-dai-du-16", role=Role.APPROVER, scope_unit_id=hai
        )
        token, _ = issue_token(session, user.id, name="api")
        theirs = create_text_bulletin(
            session, audio_dir, title="Thông báo xã Bình Châu", text="Kính gửi bà con.", owner_unit_id=chau
        )
        theirs.status = "approved"
        mine = create_text_bulletin(
            session, audio_dir, title="Thông báo xã Bình Hải", text="Kính gửi bà con.", owner_unit_id=hai
        )
        mine.status = "approved"
        ids = theirs.id, mine.id
    headers = {"Authorization": f"Bearer {token}"}
    body = {"start_date": _next_monday().isoformat(), "start_time": "19:30", "accept_conflicts": True}
    elsewhere = api.post(
        "/api/v1/schedules/slots", headers=headers, json={**body, "bulletin_id": ids[1], "unit_ids": [chau]}
    )
    assert elsewhere.status_code == 403 and "outside your scope" in elsewhere.text
    borrowed = api.post(
        "/api/v1/schedules/slots", headers=headers, json={**body, "bulletin_id": ids[0], "unit_ids": [hai]}
    )
    assert borrowed.status_code == 403 and "belongs to a unit outside your scope" in borrowed.text
    own = api.post("/api/v1/schedules/slots", headers=headers, json={**body, "bulletin_id": ids[1], "unit_ids": [hai]})
    assert own.status_code == 201, own.text


VIETNAMESE_PROBLEM = re.compile("(không|phải|cần|bắt buộc)")
NEW_SLOT = """
  - id: thong-bao-toi
    programme: chuyen-doi-so
    from: {day}
    start: "19:45"
    rule: FREQ=WEEKLY;BYDAY=SA
    target: {{units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}}
"""


def _post_file(api, text: str, **params) -> object:
    return api.post(
        "/api/v1/schedules",
        content=text.encode(),
        params={k: str(v).lower() for k, v in params.items()},
        headers={"content-type": "application/yaml"},
    )


def test_a_schedule_file_through_the_api(api, world, example_week) -> None:
    grown = example_week.rstrip() + NEW_SLOT.format(day=_next_monday().isoformat())
    before = _slots(world)
    checked = _post_file(api, grown, dry_run=True)
    assert checked.status_code == 200, checked.text
    assert checked.json()["applied"] is False and _slots(world) == before
    saved = _post_file(api, grown)
    assert saved.status_code == 201, saved.text
    assert (saved.json()["created"], saved.json()["updated"]) == (1, 0)
    assert _slots(world) == before | {"thong-bao-toi"}
    again = _post_file(api, grown)  # the same file again changes nothing, and leaves no audit entry
    assert again.status_code == 200 and again.json()["created"] == again.json()["updated"] == 0
    with session_scope(world) as session:
        applied = session.exec(
            select(AuditEntry).where(AuditEntry.action == "schedule.apply", AuditEntry.object_id == "api")
        ).all()
        assert [(a.via, a.detail["created"]) for a in applied] == [("token", 1)]


def test_a_clash_in_a_file_waits_for_acceptance(api, world, example_week) -> None:
    clash = example_week.rstrip() + NEW_SLOT.format(day=_next_monday().isoformat()).replace(
        '"19:45"', '"17:15"'
    ).replace("BYDAY=SA", "BYDAY=MO")
    refused = _post_file(api, clash)
    assert refused.status_code == 409, refused.text
    assert any("chuyen-doi-so-thu-hai" in (c["first_slot"], c["second_slot"]) for c in refused.json()["conflicts"])
    assert "thong-bao-toi" not in _slots(world)
    assert _post_file(api, clash, accept_conflicts=True).status_code == 201
    assert "thong-bao-toi" in _slots(world)


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        (
            lambda t: t.replace("rule: FREQ=DAILY", "rule: FREQ=DAYLY", 1),
            422,
            "slots[0].rule: not a valid recurrence rule",
        ),
        (lambda t: t.replace('start: "05:30"', 'start: "25:30"', 1), 422, "slots[0].start: needs a time as HH:MM"),
        (lambda t: t.replace("Quảng Ngãi/Bình Sơn/Xã Bình Hải", "Quảng Ngãi/Bình Sơn/Xã Không Có", 1), 422, "no unit"),
        (lambda t: "version: 1\nslots: [", 422, "not valid YAML"),
        (
            lambda t: t.replace(
                "        text: Đài truyền thanh huyện Bình Sơn xin kính chào bà con. Sau đây là bản tin buổi sáng.",
                "        audio_file: /etc/passwd",
                1,
            ),
            422,
            "programmes[0].items[0].audio_file: audio files are read from the server's disk",
        ),
    ],
)
def test_a_bad_file_says_what_is_wrong_in_english_and_changes_nothing(
    api, world, example_week, change, status, says
) -> None:
    before = _slots(world)
    response = _post_file(api, change(example_week))
    assert response.status_code == status and says in response.text, response.text
    assert not VIETNAMESE_PROBLEM.search(response.text.replace(example_week, "")), response.text
    assert _slots(world) == before


COMMUNE_FILE = """
version: 1
programmes:
  - id: {programme}
    title: Tin xã Bình Hải
    items:
      - title: Lịch tiêm chủng
        text: Trạm y tế xã Bình Hải thông báo lịch tiêm chủng mở rộng vào sáng thứ bảy.
slots:
  - id: tin-xa-binh-hai
    programme: {programme}
    from: {day}
    start: "18:30"
    rule: FREQ=WEEKLY;BYDAY=SA
    target: {{units: [{unit}]}}
"""
HAI = "Quảng Ngãi/Bình Sơn/Xã Bình Hải"


def _token_for(world, username: str, unit: str, role: str = "approver") -> dict[str, str]:
    return {"content-type": "application/yaml", **bearer(world, username, unit, role)}


def test_a_file_stays_inside_the_accounts_area(api, world, example_week) -> None:
    district, commune = _token_for(world, "duyet-huyen", "Bình Sơn"), _token_for(world, "duyet-xa", "Xã Bình Hải")
    day = _next_monday().isoformat()
    # The district's approver may apply the district's week: every target and stored slot is in Bình Sơn.
    same = api.post("/api/v1/schedules", content=example_week.encode(), headers=district)
    assert same.status_code == 200 and same.json()["unchanged"] > 0, same.text
    # The commune's approver may not: it would retarget and change the district's programmes.
    refused = api.post("/api/v1/schedules", content=example_week.encode(), headers=commune)
    assert refused.status_code == 403, refused.text
    said = refused.json()["detail"]
    assert "slots[0].target: reaches beyond your area" in said
    assert "slots[0].id: slot 'sang-hang-ngay' exists and plays beyond your area" in said
    assert "groups.ven-bien: reaches beyond your area" in said
    # Its own commune's programme and slot: yes.
    own = COMMUNE_FILE.format(programme="tin-xa", day=day, unit=HAI)
    before = _slots(world)
    assert api.post("/api/v1/schedules", content=own.encode(), headers=commune).status_code == 201
    assert _slots(world) == before | {"tin-xa-binh-hai"}
    # Reusing the district's programme id would change what the whole district hears: no.
    borrowed = COMMUNE_FILE.format(programme="chuyen-doi-so", day=day, unit=HAI)
    taken = api.post("/api/v1/schedules", content=borrowed.encode(), headers=commune)
    assert taken.status_code == 403
    assert (
        "programmes[0].id: programme 'chuyen-doi-so' exists and plays beyond your area (slots chuyen-doi-so-thu-hai)"
        in taken.json()["detail"]
    )
    elsewhere = COMMUNE_FILE.format(programme="tin-xa", day=day, unit="Quảng Ngãi/Bình Sơn/Xã Bình Châu")
    assert api.post("/api/v1/schedules", content=elsewhere.encode(), headers=commune).status_code == 403


def test_size_and_encoding_are_checked(api) -> None:
    assert _post_file(api, "x" * 1_000_001).status_code == 413
    bad_bytes = api.post("/api/v1/schedules", content=b"\xff\xfe", headers={"content-type": "application/yaml"})
    assert bad_bytes.status_code == 422 and "not UTF-8" in bad_bytes.text


def test_an_editor_checks_a_file_but_cannot_apply_it(api, world, example_week) -> None:
    editor = _token_for(world, "bien-tap", "Bình Sơn", role="editor")
    grown = example_week.rstrip() + NEW_SLOT.format(day=_next_monday().isoformat())
    checked = api.post("/api/v1/schedules", params={"dry_run": "true"}, content=grown.encode(), headers=editor)
    assert checked.status_code == 200, checked.text
    applied = api.post("/api/v1/schedules", content=grown.encode(), headers=editor)
    assert applied.status_code == 403 and "approves its text items" in applied.text
    assert "thong-bao-toi" not in _slots(world)
