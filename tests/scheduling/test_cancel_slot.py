"""Cancelling a slot: the clusters' next windows lose its airings still to come, aired ones stay counted,
only a user whose scope holds the whole target may do it, and a server notices a cancel made elsewhere."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bcast.cli import app
from broadcast_server.accounts.principal import CLI_PRINCIPAL, Principal, Role
from broadcast_server.accounts.scope import OutOfScope
from broadcast_server.db.session import session_scope
from broadcast_server.models import AdminUnit, AuditEntry, Slot
from broadcast_server.scheduling.cancel import SlotAlreadyCancelled, SlotNotFound, cancel_slot
from broadcast_server.scheduling.push import SchedulePusher, push_schedules
from broadcast_server.scheduling.recurrence import LOCAL_TZ

from .conftest import bearer
from .test_airing_statistics import targets
from .test_push import T1, RecordingPublisher, entry_ids

MORNING = "sang-hang-ngay"  # daily 05:30 local, the whole district
TUESDAY_0600 = datetime(2026, 11, 24, 6, 0, tzinfo=LOCAL_TZ).astimezone(UTC)  # 23 h after T1: only changes resent
TUESDAY_MORNING = "sang-hang-ngay@20261123T2230Z#0"  # due Tuesday 05:30 local
WEDNESDAY_MORNING = "sang-hang-ngay@20261124T2230Z#0"


def cancel(engine, slot_id: str, principal: Principal | None = CLI_PRINCIPAL, now: datetime = TUESDAY_0600):
    with session_scope(engine) as session:
        return cancel_slot(session, slot_id, principal=principal, now=now)


def slot(engine, slot_id: str) -> Slot:
    with session_scope(engine) as session:
        return session.get(Slot, slot_id)


def unit_id(engine, name: str) -> int:
    with session_scope(engine) as session:
        return session.exec(select(AdminUnit.id).where(AdminUnit.name == name)).one()


def test_cancelled_slot_leaves_the_next_windows_and_what_aired_stays_counted(world, public_url, clusters_of):
    publisher = RecordingPublisher()
    push_schedules(world, publisher, public_url, T1)  # Monday 07:00: Tuesday's and Wednesday's mornings sent
    district = set(clusters_of("Bình Sơn"))
    assert targets(world, TUESDAY_MORNING) == targets(world, WEDNESDAY_MORNING) == district

    done = cancel(world, MORNING)
    assert (done.slot_id, done.title, done.clusters) == (MORNING, "Bản tin buổi sáng", len(district))
    assert slot(world, MORNING).cancelled_at == TUESDAY_0600

    assert push_schedules(world, publisher, public_url, TUESDAY_0600) == len(district)
    sent = publisher.last
    assert set(sent) == district
    assert all(not any(e.startswith(MORNING) for e in entry_ids(command)) for command in sent.values())
    assert any("chieu-hang-ngay@20261124T1000Z" in entry_ids(command) for command in sent.values())  # others stay
    assert targets(world, TUESDAY_MORNING) == district  # already due when cancelled: still counted
    assert targets(world, WEDNESDAY_MORNING) == set()  # still to come: no cluster holds it any more
    with session_scope(world) as session:
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.cancel")).all()
        assert (entry.object_id, entry.actor, entry.detail["clusters"]) == (MORNING, "cli", len(district))


def test_only_a_user_whose_scope_holds_the_whole_target_may_cancel(world, apply, example_week) -> None:
    hai = unit_id(world, "Xã Bình Hải")
    commune_approver = Principal(username="duyet-hai", role=Role.APPROVER, scope_unit_id=hai)
    with pytest.raises(OutOfScope, match="outside your scope"):
        cancel(world, MORNING, commune_approver)  # the district's morning bulletin reaches every commune
    assert slot(world, MORNING).cancelled_at is None

    only_hai = example_week.replace(
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn]}",
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Hải]}",
    )
    apply(only_hai)
    district_approver = Principal(username="duyet", role=Role.APPROVER, scope_unit_id=unit_id(world, "Bình Sơn"))
    with pytest.raises(OutOfScope):
        cancel(world, "thoi-tiet-ngay-thuong", commune_approver)  # the coastal group: five communes
    cancel(world, "chuyen-doi-so-thu-hai", commune_approver)
    cancel(world, "thoi-tiet-ngay-thuong", district_approver)
    with pytest.raises(SlotAlreadyCancelled):
        cancel(world, "chuyen-doi-so-thu-hai", district_approver)
    with pytest.raises(SlotNotFound):
        cancel(world, "khong-co", district_approver)
    with session_scope(world) as session:
        audit = session.exec(select(AuditEntry.object_id, AuditEntry.actor, AuditEntry.unit_id)).all()
    assert sorted(a for a in audit if a[0] != "example-week.yaml") == [
        ("chuyen-doi-so-thu-hai", "duyet-hai", hai),
        ("thoi-tiet-ngay-thuong", "duyet", unit_id(world, "Bình Sơn")),
    ]

    apply(only_hai)  # the file still names the slot: applying it brings the slot back
    assert slot(world, "chuyen-doi-so-thu-hai").cancelled_at is None


def test_a_running_pusher_notices_a_cancel_saved_by_another_process(world, public_url, clusters_of) -> None:
    publisher = RecordingPublisher()
    now = T1
    pusher = SchedulePusher(
        world, publisher, public_url, lambda: now, interval=timedelta(hours=1), poll_s=0.02, revision_check_s=0.1
    )
    pusher.start()
    try:
        deadline = clock.monotonic() + 30
        while not publisher.batches:
            assert clock.monotonic() < deadline, "the first push never came"
            clock.sleep(0.05)
        cancel(world, MORNING, now=T1)  # no poke: as `bcast schedule cancel` in its own process
        while len(publisher.batches) < 2:
            assert clock.monotonic() < deadline, "the cancel did not reach the clusters without a poke"
            clock.sleep(0.05)
    finally:
        pusher.stop()
    assert set(publisher.last) == set(clusters_of("Bình Sơn"))
    assert all(not any(e.startswith(MORNING) for e in entry_ids(c)) for c in publisher.last.values())


def test_the_cancel_command(world, database_url) -> None:
    runner = CliRunner()
    base = ["schedule", "cancel", "--database-url", database_url]
    kept = runner.invoke(app, [*base, MORNING], input="n\n")
    assert kept.exit_code == 1 and "Bản tin buổi sáng" in kept.output
    assert slot(world, MORNING).cancelled_at is None
    done = runner.invoke(app, [*base, MORNING, "--yes"])
    assert done.exit_code == 0, done.output
    assert "Đã hủy khung giờ sang-hang-ngay" in done.output
    assert slot(world, MORNING).cancelled_at is not None
    again = runner.invoke(app, [*base, MORNING, "--yes"])
    assert again.exit_code == 1 and "đã bị hủy lúc" in again.output
    unknown = runner.invoke(app, [*base, "khong-co", "--yes"])
    assert unknown.exit_code == 2 and "Không có khung giờ" in unknown.output


def test_the_cancel_route(world, api) -> None:
    token_headers = bearer(world, "duyet-hai", "Xã Bình Hải")
    listed = api.get("/api/v1/schedules/slots").json()
    assert [s["id"] for s in listed] == sorted(s["id"] for s in listed) and len(listed) == 4
    morning = next(s for s in listed if s["id"] == MORNING)
    assert (morning["rule"], morning["start_time"], morning["cancelled_at"]) == ("FREQ=DAILY", "05:30", None)
    assert morning["clusters"] == 144

    scoped = api.post(f"/api/v1/schedules/slots/{MORNING}/cancel", headers=token_headers)
    assert scoped.status_code == 403 and "outside your scope" in scoped.json()["detail"]
    assert api.post("/api/v1/schedules/slots/khong-co/cancel").status_code == 404
    done = api.post(f"/api/v1/schedules/slots/{MORNING}/cancel")
    assert done.status_code == 200 and done.json()["cancelled_at"] is not None
    again = api.post(f"/api/v1/schedules/slots/{MORNING}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert MORNING not in {s["id"] for s in api.get("/api/v1/schedules/slots").json()}
    every = api.get("/api/v1/schedules/slots", params={"include_cancelled": "true"}).json()
    assert MORNING in {s["id"] for s in every}
    assert f"id: {MORNING}" not in api.get("/api/v1/schedules").text  # the exported file leaves it out


def test_the_list_command_shows_what_to_cancel(world, database_url) -> None:
    runner = CliRunner()
    cancel(world, "chuyen-doi-so-thu-hai")
    listed = runner.invoke(app, ["schedule", "list", "--database-url", database_url], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert "sang-hang-ngay" in listed.output and "Hằng ngày" in listed.output and "144" in listed.output
    assert "nhóm ven-bien" in listed.output  # the coastal weather's target, by its group
    assert "chuyen-doi-so-thu-hai" not in listed.output  # cancelled: only with --all
    every = runner.invoke(app, ["schedule", "list", "--all", "--database-url", database_url], env={"COLUMNS": "250"})
    assert "chuyen-doi-so-thu-hai" in every.output and "Đã hủy" in every.output
    assert "Hằng tuần: Thứ Hai" in every.output


def test_the_api_lists_the_slots_of_the_callers_area(world, apply, example_week, api) -> None:
    trung_only = example_week.replace(
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn]}",
        "    rule: FREQ=WEEKLY;BYDAY=MO\n    target: {units: [Quảng Ngãi/Bình Sơn/Xã Bình Trung]}",
    )
    apply(trung_only)  # the Monday column now plays in Bình Trung alone
    viewer = bearer(world, "xem-hai", "Xã Bình Hải", role="viewer")
    everything = {s["id"] for s in api.get("/api/v1/schedules/slots").json()}
    hai = {s["id"] for s in api.get("/api/v1/schedules/slots", headers=viewer).json()}
    assert "chuyen-doi-so-thu-hai" in everything
    assert hai == everything - {"chuyen-doi-so-thu-hai"}
