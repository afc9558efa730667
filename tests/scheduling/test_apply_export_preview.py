"""Schedule files applied to the Bình Sơn fleet, exported back, and previewed, on SQLite and PostgreSQL.

Every "nothing changed" check compares whole-database snapshots (every row of every table, nothing ignored).
Fixtures (fleet, apply, snapshot, the once-per-session speech rendering) are in conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from broadcast_server.db.session import session_scope
from broadcast_server.models import AudioAsset, Bulletin, Programme, ProgrammeItem, Slot, TargetGroup
from broadcast_server.schedule_cli import EXIT_BAD_FILE, EXIT_CONFLICTS, app
from broadcast_server.scheduling.export import export_schedule
from broadcast_server.scheduling.preview import preview
from broadcast_server.scheduling.recurrence import LOCAL_TZ
from broadcast_server.scheduling.schedule_file import ScheduleFileError, parse_schedule_yaml

QUEUED = "the later entry is queued and starts when the earlier one ends"
QUEUED_VI = "chương trình sau xếp hàng, phát khi chương trình trước kết thúc"

# A second background programme at 05:30 every day on Bình Hải's 5 clusters: it overlaps the district's
# morning bulletin there, and nowhere else.
CLASHING_SLOT = """
  - id: ban-tin-rieng-binh-hai
    programme: ban-tin-chieu
    from: 2026-11-23
    start: "05:30"
    rule: FREQ=DAILY
    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}
"""

# Another file: a recording and a short text, a bounded daily slot on two clusters, a one-off insert on a village.
EXTRA = """
version: 1
programmes:
  - id: nhac-hieu-xa
    title: Nhạc hiệu xã Bình Hải
    on_interrupt: resume
    items:
      - title: Nhạc hiệu
        audio_file: am-thanh/nhac-hieu.wav
      - title: Lời chào của xã
        priority: priority
        category: Thông báo
        text: Xin chào bà con.
        voice: vi-vn-x-central
        rate_wpm: 140
slots:
  - id: nhac-hieu-binh-hai
    programme: nhac-hieu-xa
    from: 2026-11-24
    start: "06:00"
    until: 2026-11-27
    rule: FREQ=DAILY
    target: {clusters: [binh-son-binh-hai-001, binh-son-binh-hai-002]}
  - id: mot-lan-thon-1
    programme: nhac-hieu-xa
    from: 2026-11-25
    start: "19:00"
    layer: insert
    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải/Thôn 1]}
"""


def counts(engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {
            model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Programme, ProgrammeItem, Slot, TargetGroup, Bulletin, AudioAsset)
        }


def test_rendering_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """What conftest's once-per-session speech relies on, and idempotent apply needs: same text, same file.

    (Recordings: test_export_round_trip re-applies an audio_file item, rendered for real, and expects no change.)
    """
    monkeypatch.undo()  # the real text_to_broadcast_audio
    from audio.speech import text_to_broadcast_audio

    a = text_to_broadcast_audio("Xin chào bà con.", tmp_path / "a")
    b = text_to_broadcast_audio("Xin chào bà con.", tmp_path / "b")
    assert (a.sha256, a.size_bytes, a.duration_s) == (b.sha256, b.size_bytes, b.duration_s)


# ------------------------------------------------------------------------------------------ 1. idempotent


def test_apply_creates_rows_and_applying_again_changes_nothing(apply, fleet, example_week, snapshot, database_url):
    first = apply(example_week)
    assert first.applied and first.conflicts == []
    assert (first.created, first.updated, first.unchanged) == (9, 0, 0)  # 4 programmes, 1 group, 4 slots
    assert counts(fleet) == {
        "programme": 4,
        "programme_item": 7,
        "slot": 4,
        "target_group": 1,
        "bulletin": 7,
        "audio_asset": 7,
    }
    with session_scope(fleet) as session:
        morning = session.get(Slot, "sang-hang-ngay")
        assert (morning.start_date, morning.start_time, morning.rule, morning.layer) == (
            "2026-11-23",
            "05:30",
            "FREQ=DAILY",
            "background",
        )
        assert morning.target["units"] == ["Quảng Ngãi/Bình Sơn"]
        items = session.exec(
            select(ProgrammeItem).where(ProgrammeItem.programme_id == "ban-tin-sang").order_by(ProgrammeItem.position)
        ).all()
        assert [(i.title, i.priority) for i in items] == [
            ("Lời chào buổi sáng", "normal"),
            ("Thông báo của UBND huyện", "priority"),
            ("Tin nông nghiệp", "normal"),
        ]
        assert all(session.get(Bulletin, i.bulletin_id).status == "approved" for i in items)

    before = snapshot(database_url)
    again = apply(example_week, now=datetime(2026, 11, 25, 9, 0, tzinfo=UTC))  # later: nothing depends on it
    assert again.applied and again.conflicts == []
    assert (again.created, again.updated, again.unchanged) == (0, 0, 9)
    assert snapshot(database_url) == before


def test_changing_one_thing_updates_only_it(apply, fleet, example_week, snapshot, database_url):
    apply(example_week)
    changed = apply(example_week.replace('start: "17:15"', 'start: "17:20"'))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 8)
    with session_scope(fleet) as session:
        assert session.get(Slot, "chuyen-doi-so-thu-hai").start_time == "17:20"
    before = snapshot(database_url)
    assert (apply(example_week.replace('start: "17:15"', 'start: "17:20"')).updated) == 0
    assert snapshot(database_url) == before


def test_naming_the_default_voice_is_kept_and_exported(apply, fleet, example_week):
    """The same speech (the default voice named), yet what the file says is stored and written back."""
    apply(example_week)
    farming = "      - title: Tin nông nghiệp\n"
    named = apply(example_week.replace(farming, farming + "        voice: vi\n", 1))
    assert (named.created, named.updated) == (0, 1)
    with session_scope(fleet) as session:
        exported = parse_schedule_yaml(export_schedule(session))
    [morning] = [p for p in exported.programmes if p.id == "ban-tin-sang"]
    assert [(i.title, i.voice) for i in morning.items][2] == ("Tin nông nghiệp", "vi")


# --------------------------------------------------------------------------------- 2. bad files change nothing

GROUP_LINE = "      - Quảng Ngãi/Bình Sơn/Xã Bình Đông\n"
DISTRICT = "target: {units: [Quảng Ngãi/Bình Sơn]}"
WEATHER_TEXT = (
    "        text: Dự báo ngày mai vùng biển Quảng Ngãi có gió đông bắc cấp 4 đến cấp 5, sóng biển cao 1,5 đến 2,5m.\n"
)


# (what is broken, text replaced, replacement, the place named, what the problem must name)
BAD_FILES = [
    (
        "unknown unit",
        DISTRICT,
        "target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hai]}",
        "slots[0].target.units",
        "Quảng Ngãi/Bình Sơn/Xã Bình Hai",
    ),
    (
        "unknown cluster",
        DISTRICT,
        "target: {clusters: [binh-son-binh-hai-001, binh-son-binh-hai-099]}",
        "slots[0].target.clusters",
        "binh-son-binh-hai-099",
    ),
    (
        "unknown group",
        "target: {groups: [ven-bien]}",
        "target: {groups: [ven-song]}",
        "slots[3].target.groups",
        "ven-song",
    ),
    (
        "unknown unit in a group",
        GROUP_LINE,
        "      - Quảng Ngãi/Bình Sơn/Xã Bình Đong\n",
        "groups.ven-bien.units",
        "Xã Bình Đong",
    ),
    ("invalid RRULE", "rule: FREQ=WEEKLY;BYDAY=MO\n", "rule: FREQ=WEEKLY;BYDAY=MON\n", "slots[2].rule", "MON"),
    (
        "reading speed out of bounds",
        "      - title: Tin nông nghiệp\n",
        "      - title: Tin nông nghiệp\n        rate_wpm: 900\n",
        "programmes[0].items[2].rate_wpm",
        "900 không hợp lệ: cần số từ mỗi phút, từ 80 đến 300",
    ),
    (
        "not a voice name",
        "      - title: Tin nông nghiệp\n",
        "      - title: Tin nông nghiệp\n        voice: Giọng Nam\n",
        "programmes[0].items[2].voice",
        "không phải tên giọng đọc",
    ),
    (
        "a voice on a recording",
        WEATHER_TEXT,
        "        audio_file: am-thanh/du-bao-bien.mp3\n        voice: vi-vn-x-south\n",
        "programmes[3].items[0]",
        "voice và rate_wpm chỉ dùng cho mục text",
    ),
    (
        "missing audio file",
        WEATHER_TEXT,
        "        audio_file: am-thanh/du-bao-bien.mp3\n",
        "programmes[3].items[0]",
        "du-bao-bien.mp3",
    ),
]


def test_a_bad_file_names_the_place_and_changes_nothing(apply, example_week, snapshot, database_url):
    apply(example_week)
    before = snapshot(database_url)
    # Good changes too (a title, a new text rendered before the bad item), so partial saving would show.
    changed = example_week.replace("title: Bản tin buổi sáng", "title: Bản tin sáng sớm").replace(
        "Sau đây là bản tin buổi sáng.", "Sau đây là bản tin sáng nay."
    )
    for broken, old, new, where, names in BAD_FILES:
        assert old in changed, broken
        with pytest.raises(ScheduleFileError) as error:
            apply(changed.replace(old, new, 1))
        placed = [p for p in error.value.problems if p.startswith(where)]
        assert placed, (broken, error.value.problems)
        assert any(names in p for p in placed), (broken, placed)
        assert snapshot(database_url) == before, broken


def test_a_zero_interval_is_an_invalid_rule(example_week):
    # Parse only: applying such a file hangs (occurrences() never returns).
    problems = []
    try:
        parse_schedule_yaml(example_week.replace("rule: FREQ=DAILY\n", "rule: FREQ=DAILY;INTERVAL=0\n", 1))
    except ScheduleFileError as error:
        problems = error.problems
    assert any(p.startswith("slots[0].rule") for p in problems), problems


# ------------------------------------------------------------------------------------------------ 3. conflicts


def test_conflicts_are_reported_before_saving(apply, fleet, example_week, snapshot, database_url, clusters_of):
    clashing = example_week + CLASHING_SLOT
    empty = snapshot(database_url)

    refused = apply(clashing)
    assert not refused.applied and (refused.created, refused.updated) == (0, 0)
    assert len(refused.conflicts) == 1
    notice = refused.conflicts[0]
    assert {notice.first_slot, notice.second_slot} == {"ban-tin-rieng-binh-hai", "sang-hang-ngay"}
    assert notice.clusters == len(clusters_of("Xã Bình Hải")) == 5
    assert notice.rule == QUEUED
    assert notice.first_at == datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # Monday 05:30 local
    assert notice.overlap_s > 0
    assert snapshot(database_url) == empty

    tried = apply(clashing, accept_conflicts=True, dry_run=True)
    assert not tried.applied and tried.conflicts == refused.conflicts
    assert snapshot(database_url) == empty
    assert not apply(example_week, dry_run=True).applied  # dry run without conflicts: still nothing stored
    assert snapshot(database_url) == empty

    accepted = apply(clashing, accept_conflicts=True)
    assert accepted.applied and accepted.conflicts == refused.conflicts
    assert accepted.created == 10
    assert counts(fleet)["slot"] == 5


def test_conflicts_with_stored_slots_are_reported(apply, example_week, snapshot, database_url):
    apply(example_week)
    before = snapshot(database_url)
    one_off = """
version: 1
programmes:
  - id: thong-bao-xa
    title: Thông báo của xã
    items: [{title: Thông báo, text: Xin chào bà con.}]
slots:
  - id: thong-bao-binh-hai
    programme: thong-bao-xa
    from: 2026-11-24
    start: "05:30"
    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}
"""
    result = apply(one_off)
    assert not result.applied
    assert [(c.first_slot, c.second_slot, c.clusters, c.rule, c.first_at) for c in result.conflicts] == [
        ("sang-hang-ngay", "thong-bao-binh-hai", 5, QUEUED, datetime(2026, 11, 23, 22, 30, tzinfo=UTC))
    ]
    assert snapshot(database_url) == before

    # The weather insert moved onto the morning bulletin: the insert waits for an item boundary.
    result = apply(example_week.replace('start: "11:00"', 'start: "05:30"'))
    assert not result.applied
    assert [(c.first_slot, c.second_slot, c.rule, c.clusters, c.first_at) for c in result.conflicts] == [
        (
            "sang-hang-ngay",
            "thoi-tiet-ngay-thuong",
            "insert goes in at the next item boundary of the background programme, which then resumes",
            40,  # the five coastal communes' clusters
            datetime(2026, 11, 22, 22, 30, tzinfo=UTC),
        )
    ]
    assert snapshot(database_url) == before


def test_a_one_off_clash_weeks_ahead_is_reported(apply, example_week, snapshot, database_url):
    late_one_off = CLASHING_SLOT.replace("from: 2026-11-23", "from: 2026-12-25").replace("    rule: FREQ=DAILY\n", "")
    result = apply(example_week + late_one_off)
    assert [(c.first_at, c.clusters) for c in result.conflicts] == [(datetime(2026, 12, 24, 22, 30, tzinfo=UTC), 5)]
    assert not result.applied


def _cli(database_url: str, audio_dir: Path, *args: str):
    result = CliRunner().invoke(
        app,
        ["schedule", "apply", *args, "--database-url", database_url],
        env={"BCAST_AUDIO_DIR": str(audio_dir), "COLUMNS": "250"},
    )
    return result, " ".join((result.output or "").split())


def test_cli_exit_codes_and_messages(fleet, example_week, files_dir, audio_dir, snapshot, database_url):
    clashing = files_dir / "tuan.yaml"
    clashing.write_text(example_week + CLASHING_SLOT, encoding="utf-8")
    empty = snapshot(database_url)

    result, text = _cli(database_url, audio_dir, str(clashing))
    assert result.exit_code == EXIT_CONFLICTS == 3, text
    assert "Chồng giờ: ban-tin-rieng-binh-hai và sang-hang-ngay trên 5 cụm loa" in text
    assert f"Quy tắc: {QUEUED_VI}." in text
    assert "Chưa áp dụng: có chương trình chồng giờ" in text
    assert snapshot(database_url) == empty

    result, text = _cli(database_url, audio_dir, str(clashing), "--dry-run")
    assert result.exit_code == 0 and "hợp lệ (chạy thử, chưa lưu)" in text, text
    assert snapshot(database_url) == empty

    bad = files_dir / "sai.yaml"
    bad.write_text(example_week.replace(DISTRICT, "target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hai]}", 1))
    result, text = _cli(database_url, audio_dir, str(bad))
    assert result.exit_code == EXIT_BAD_FILE == 2, text
    assert "Tệp sai.yaml có 1 lỗi, chưa áp dụng gì" in text
    assert "slots[0].target.units: không có địa bàn 'Quảng Ngãi/Bình Sơn/Xã Bình Hai'" in text
    bad.write_text(example_week.replace("BYDAY=MO\n", "BYDAY=MON\n"))
    result, text = _cli(database_url, audio_dir, str(bad))
    assert result.exit_code == 2 and "slots[2].rule: quy tắc lặp không hợp lệ" in text, text
    assert snapshot(database_url) == empty

    result, text = _cli(database_url, audio_dir, str(clashing), "--yes")
    assert result.exit_code == 0, text
    assert "tuan.yaml: thêm 10, sửa 0, giữ nguyên 0." in text
    stored = snapshot(database_url)
    # The change is audited: (actor, via, action) of audit_entry (id, at, actor, user_id, role, via, ip, action, ...).
    assert [(row[2], row[5], row[7]) for row in stored["audit_entry"]] == [("cli", "cli", "schedule.apply")]
    result, text = _cli(database_url, audio_dir, str(clashing), "--yes")
    assert result.exit_code == 0 and "tuan.yaml: thêm 0, sửa 0, giữ nguyên 10." in text, text
    assert snapshot(database_url) == stored


# ------------------------------------------------------------------------------------------------- 4. export


def test_export_round_trip(apply, fleet, example_week, tone, snapshot, database_url):
    tone("am-thanh/nhac-hieu.wav")
    apply(example_week)
    apply(EXTRA)
    with session_scope(fleet) as session:
        exported = export_schedule(session)
    before = snapshot(database_url)

    spec = parse_schedule_yaml(exported)
    originals = [parse_schedule_yaml(example_week), parse_schedule_yaml(EXTRA)]
    assert sorted(spec.programmes, key=lambda p: p.id) == sorted(
        (p for s in originals for p in s.programmes), key=lambda p: p.id
    )
    assert sorted(spec.slots, key=lambda s: s.id) == sorted((s for o in originals for s in o.slots), key=lambda s: s.id)
    assert spec.groups == originals[0].groups

    again = apply(exported)
    assert again.applied and again.conflicts == []
    assert (again.created, again.updated, again.unchanged) == (0, 0, 12)
    assert snapshot(database_url) == before
    with session_scope(fleet) as session:
        assert export_schedule(session) == exported


GROUPS_FILE = """
version: 1
programmes:
  - id: thong-bao-xa
    title: Thông báo của xã
    items: [{title: Thông báo, text: Xin chào bà con.}]
groups:
  a-nhom: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}
  z-nhom: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Trung]}
slots:
  - id: thong-bao-nhom
    programme: thong-bao-xa
    from: 2026-11-23
    start: "08:00"
    target: {groups: [a-nhom, z-nhom]}
"""


def test_export_depends_only_on_what_is_stored(request, apply, fleet, database_url):
    """A file kept in version control must not change when the schedule did not: same rows, same text."""
    apply(GROUPS_FILE)
    with session_scope(fleet) as session:
        exported = export_schedule(session)
    apply(GROUPS_FILE.replace("Xã Bình Hải]}", "Xã Bình Châu]}"))
    apply(GROUPS_FILE)  # back to the same rows
    with session_scope(fleet) as session:
        assert export_schedule(session) == exported


# ------------------------------------------------------------------------------------------------ 5. preview


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


MORNING = ["Thông báo của UBND huyện", "Lời chào buổi sáng", "Tin nông nghiệp"]  # the priority item first
AFTERNOON = ["Tin trong huyện", "Nhắc nhở an toàn giao thông"]


def test_preview_of_a_week_day(apply, fleet, example_week, public_url):
    apply(example_week)
    coastal = "binh-son-binh-hai-001"
    inland = "binh-son-binh-trung-001"
    thanh, thanh_coastal = "binh-son-binh-thanh-001", "binh-son-binh-thanh-001-2"  # Bình Thanh / Bình Thạnh (renamed)
    clusters = [coastal, inland, thanh, thanh_coastal]
    with session_scope(fleet) as session:
        monday = preview(session, public_url, clusters, local(2026, 11, 23), local(2026, 11, 24))
        tuesday = preview(session, public_url, clusters, local(2026, 11, 24), local(2026, 11, 25))
        saturday = preview(session, public_url, [coastal], local(2026, 11, 28), local(2026, 11, 29))
        before = preview(session, public_url, [coastal], local(2026, 11, 20), local(2026, 11, 23))
        assets = {a.id for a in session.exec(select(AudioAsset))}

    def timeline(plays):
        return [(p.title, p.due) for p in plays]

    weather = [("Dự báo thời tiết biển", utc(2026, 11, 23, 4, 0))]  # 11:00 local
    expected_monday = (
        [(title, utc(2026, 11, 22, 22, 30)) for title in MORNING]  # 05:30 local is 22:30 UTC the day before
        + weather
        + [(title, utc(2026, 11, 23, 10, 0)) for title in AFTERNOON]  # 17:00 local
        + [("Chuyển đổi số", utc(2026, 11, 23, 10, 15))]  # 17:15 local, Mondays only
    )
    assert timeline(monday[coastal]) == timeline(monday[thanh_coastal]) == expected_monday
    assert timeline(monday[inland]) == timeline(monday[thanh]) == [t for t in expected_monday if t not in weather]

    plays = monday[coastal]
    assert plays[0].start == utc(2026, 11, 22, 22, 30) and plays[0].entry_id == "sang-hang-ngay@20261122T2230Z"
    for previous, play in zip(plays, plays[1:], strict=False):
        assert play.start == max(previous.end, play.due)  # items follow each other, none before it is due
    at = {p.title: p for p in plays}
    assert at["Dự báo thời tiết biển"].start == utc(2026, 11, 23, 4, 0)
    assert at["Chuyển đổi số"].start == utc(2026, 11, 23, 10, 15)
    assert at["Chuyển đổi số"].entry_id == "chuyen-doi-so-thu-hai@20261123T1015Z"
    assert at["Chuyển đổi số"].start.astimezone(LOCAL_TZ).strftime("%a %H:%M") == "Mon 17:15"
    assert all(p.audio.sha256 in assets and p.audio.url == f"{public_url}/api/v1/audio/{p.audio.sha256}" for p in plays)

    for cluster in clusters:
        titles = [p.title for p in tuesday[cluster]]
        assert "Chuyển đổi số" not in titles
        assert titles[:3] == MORNING and tuesday[cluster][0].start == utc(2026, 11, 23, 22, 30)
        assert ("Dự báo thời tiết biển" in titles) == (cluster in (coastal, thanh_coastal))
    assert [p.title for p in saturday[coastal]] == MORNING + AFTERNOON  # weather on weekdays only
    assert before[coastal] == []  # nothing before the first day (2026-11-23 local)
