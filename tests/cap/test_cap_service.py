"""Receiving CAP alerts on SQLite and PostgreSQL: aired on the clusters inside the area, once; cancelled;
reviewed; recorded. The publisher is a port (no broker): what would go out is checked as it is."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from broadcast_server.cap.alert import CapError
from broadcast_server.cap.recording import RecordingSource
from broadcast_server.cap.service import SpeechSettings, receive_cap
from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.models import AudioAsset, Broadcast, Bulletin, CapAlert, Delivery
from broadcast_server.services.dispatch import send_broadcast
from broadcast_server.services.fleet_import import import_fleet
from mqtt_contract import Channel, validate
from tests.cap.samples import alert, resource, serving, tone_wav
from tests.server.test_dispatch_and_ingest import RecordingPublisher

FLEET = """cluster_id,province,district,commune,village,lat,lon
bh-1,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.30,108.80
bh-2,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 2,15.25,108.85
bt-1,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.30,108.60
"""
NOW = datetime(2026, 10, 29, 7, 30, tzinfo=UTC)
CANCEL = "canhbao@phongchongthientai.gov.vn,VNDMA-2026-1021,2026-10-29T14:00:00+07:00"


@pytest.fixture
def fleet(engine, tmp_path):
    import_fleet(engine, parse_fleet_csv(FLEET))
    return engine, SpeechSettings(tmp_path / "audio", "vi", -16.0, 300)


def receive(engine, speech, document: bytes, publisher=None):
    with session_scope(engine) as session:
        return receive_cap(session, publisher or RecordingPublisher(), None, document, speech, now=NOW)


def test_a_severe_storm_airs_at_once_on_the_clusters_inside_its_area_and_only_once(fleet):
    engine, speech = fleet
    outcome = receive(engine, speech, alert())
    assert (outcome.action, outcome.clusters, outcome.duplicate) == ("air", 2, False)
    with session_scope(engine) as session:
        broadcast = session.get(Broadcast, outcome.broadcast_id)
        bulletin = session.get(Bulletin, outcome.bulletin_id)
        targets = sorted(session.exec(select(Delivery.cluster_id).where(Delivery.broadcast_id == broadcast.id)))
        assert (broadcast.priority, bulletin.status, bulletin.title) == (
            "emergency",
            "approved",
            "Cảnh báo: Cảnh báo bão số 12",
        )
        assert "tàu thuyền vào bờ ngay" in bulletin.text and broadcast.expires_at > NOW
    assert targets == ["bh-1", "bh-2"]  # not bt-1: outside the polygon
    publisher = RecordingPublisher()
    send_broadcast(engine, publisher, outcome.broadcast_id, "http://127.0.0.1:9")
    assert [c for c, _ in publisher.sent] == ["bh-1", "bh-2"]
    for _, command in publisher.sent:
        validate(Channel.COMMAND, command)

    again = receive(engine, speech, alert())  # the agency's system retries: nothing is aired twice
    assert again.duplicate and again.broadcast_id == outcome.broadcast_id
    with session_scope(engine) as session:
        assert len(session.exec(select(Broadcast)).all()) == 1 and len(session.exec(select(CapAlert)).all()) == 1


def test_a_cancel_stops_what_its_alert_started(fleet):
    engine, speech = fleet
    aired = receive(engine, speech, alert())
    send_broadcast(engine, RecordingPublisher(drop={"bh-2"}), aired.broadcast_id, "http://127.0.0.1:9")
    publisher = RecordingPublisher()
    cancel = receive(engine, speech, alert("VNDMA-2026-1022", msg_type="Cancel", references=CANCEL), publisher)
    assert (cancel.action, cancel.clusters, cancel.broadcast_id) == ("cancel", 2, None)
    assert sorted(c for c, _ in publisher.sent) == ["bh-1", "bh-2"]
    assert all(cmd["stop"] == {"broadcast_id": aired.broadcast_id} for _, cmd in publisher.sent)
    with session_scope(engine) as session:
        states = dict(session.exec(select(Delivery.cluster_id, Delivery.state)).all())
    assert states == {"bh-1": "sent", "bh-2": "stopped"}  # bh-2 never got it; bh-1 settles when it reports


def test_a_moderate_alert_waits_for_approval_and_exercises_are_only_recorded(fleet):
    engine, speech = fleet
    review = receive(engine, speech, alert("VNDMA-3", severity="Moderate"))
    assert (review.action, review.broadcast_id) == ("review", None)
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, review.bulletin_id)
        assert (bulletin.status, bulletin.priority) == ("submitted", "priority")
    for document, reason in (
        (alert("VNDMA-4", status="Exercise"), "status Exercise"),
        (alert("VNDMA-5", area="<circle>10.0,106.0 5</circle>"), "no cluster of yours lies inside its area"),
    ):
        recorded = receive(engine, speech, document)
        assert (recorded.action, recorded.bulletin_id, recorded.broadcast_id) == ("record", None, None)
        assert reason in recorded.reason
    with session_scope(engine) as session:
        assert session.exec(select(Broadcast)).all() == []


def _audio_of(engine, outcome) -> tuple[str, float]:
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, outcome.bulletin_id)
        return bulletin.kind, session.get(AudioAsset, bulletin.audio_asset_id).duration_s


def test_an_alert_with_its_own_recording_airs_the_recording(fleet):
    engine, speech = fleet
    wav = tone_wav(2.0)
    digest = hashlib.sha1(wav).hexdigest()  # noqa: S324 - CAP 1.2's digest
    outcome = receive(engine, speech, alert(resource=resource(content=wav, size=len(wav), digest=digest)))
    assert (outcome.action, outcome.clusters) == ("air", 2)
    assert outcome.reason.endswith("; its recording is aired")
    kind, duration_s = _audio_of(engine, outcome)
    assert kind == "audio" and 1.9 < duration_s < 2.2  # the two-second recording, not the spoken text
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, outcome.bulletin_id)
        assert (bulletin.priority, bulletin.status, bulletin.title) == (
            "emergency",
            "approved",
            "Cảnh báo: Cảnh báo bão số 12",
        )
        assert session.get(Broadcast, outcome.broadcast_id).priority == "emergency"


@pytest.mark.parametrize(
    ("recording", "why"),
    [
        (resource(content=tone_wav(0.5), digest="0" * 40), "does not match the alert's SHA-1 digest"),
        (resource(content=tone_wav(0.5), size=10), "the alert says 10"),
        (resource(content=b"RIFF not really a wave file"), "its recording is not used ("),
        (resource(uri="http://127.0.0.1:9/bao.wav"), "host '127.0.0.1' is not in BCAST_CAP_RESOURCE_HOSTS"),
    ],
    ids=["digest", "size", "not-audio", "host-not-allowed"],
)
def test_a_recording_that_cannot_be_used_leaves_the_text_to_speech(fleet, recording, why):
    engine, speech = fleet
    outcome = receive(engine, speech, alert(resource=recording))
    assert outcome.action == "air" and why in outcome.reason and outcome.reason.endswith(": the text is spoken")
    kind, duration_s = _audio_of(engine, outcome)
    assert kind == "text" and duration_s > 5  # the headline, description and instruction, spoken


def test_a_linked_recording_is_fetched_from_an_allowed_host_only(fleet):
    engine, speech = fleet
    wav = tone_wav(1.5)
    with serving({"/bao.wav": wav}) as (base, requests):
        allowed = dataclasses.replace(
            speech, recordings=RecordingSource.from_setting("tin.example, 127.0.0.1", max_bytes=10**6)
        )
        outcome = receive(engine, allowed, alert("VNDMA-L1", resource=resource(uri=f"{base}/bao.wav")))
        assert outcome.reason.endswith("; its recording is aired") and _audio_of(engine, outcome)[0] == "audio"
        missing = receive(engine, allowed, alert("VNDMA-L2", resource=resource(uri=f"{base}/khong-co.wav")))
        assert "answered HTTP 404" in missing.reason and _audio_of(engine, missing)[0] == "text"
        small = dataclasses.replace(speech, recordings=RecordingSource(frozenset({"127.0.0.1"}), max_bytes=1000))
        large = receive(engine, small, alert("VNDMA-L3", resource=resource(uri=f"{base}/bao.wav")))
        assert "sent more than 1000 bytes" in large.reason
        refused = receive(engine, speech, alert("VNDMA-L4", resource=resource(uri=f"{base}/bao.wav")))
        assert "is not in BCAST_CAP_RESOURCE_HOSTS" in refused.reason
    assert requests == ["/bao.wav", "/khong-co.wav", "/bao.wav"]  # none for the host not allowed


def test_a_document_that_is_not_an_alert_stores_nothing(fleet, snapshot, database_url):
    engine, speech = fleet
    before = snapshot(database_url)
    with pytest.raises(CapError):
        receive(engine, speech, b"<alert>not CAP</alert>")
    assert snapshot(database_url) == before


def test_the_api_receives_alerts_for_the_callers_own_clusters(client, world) -> None:
    """Through `POST /api/v1/cap` with the accounts' world (tests/accounts): a commune approver's alert airs
    only on its commune's clusters; the district's reaches the area; other roles may not send alerts."""
    around_binh_hai = "<circle>15.4,108.8 2</circle>"  # bh-1 and bh-2; bt-* lie 15 km away
    headers = {"Content-Type": "application/cap+xml"}
    commune = client.post(
        "/api/v1/cap", content=alert("A-1", area=around_binh_hai), headers={**headers, **world.headers("duyet-bt")}
    )
    assert commune.status_code == 200, commune.text
    assert (commune.json()["action"], commune.json()["clusters"]) == ("record", 0)
    district = client.post(  # with the agency's recording: that is what airs
        "/api/v1/cap",
        content=alert("A-2", area=around_binh_hai, resource=resource(content=tone_wav(1.0))),
        headers={**headers, **world.headers("duyet-huyen")},
    )
    assert district.status_code == 200 and district.json()["action"] == "air" and district.json()["clusters"] == 2
    assert district.json()["reason"].endswith("; its recording is aired")
    sent = client.get(f"/api/v1/broadcasts/{district.json()['broadcast_id']}", headers=world.headers("duyet-huyen"))
    assert sent.json()["targeted"] == 2
    refused = client.post("/api/v1/cap", content=alert("A-3"), headers={**headers, **world.headers("kythuat-bt")})
    assert refused.status_code == 403
    bad = client.post("/api/v1/cap", content=b"<alert/>", headers={**headers, **world.headers("duyet-huyen")})
    assert bad.status_code == 422 and "not a usable CAP 1.2 alert: root element" in bad.json()["detail"]
    listed = client.get("/api/v1/cap", headers=world.headers("duyet-huyen")).json()
    assert {a["identifier"]: a["action"] for a in listed} == {"A-1": "record", "A-2": "air"}


def test_the_same_alert_posted_twice_at_once_is_aired_once(client, world, monkeypatch) -> None:
    """The race a retrying agency system can make: another request stores the alert between this one's
    duplicate check and its insert. The unique (sender, identifier) refuses the second; it answers as a duplicate."""
    import broadcast_server.cap.service as service
    from broadcast_server.models import CapAlert as Row

    if world.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers (the API token's use is a write): the race cannot happen there")

    real_decide = service.decide

    def decide_after_the_other_request_stored_it(alert, now):
        with session_scope(world.engine) as other:
            other.add(
                Row(sender=alert.sender, identifier=alert.identifier, sent=alert.sent, status="Actual",
                    msg_type="Alert", action="record", reason="stored by the other request", document="")
            )  # fmt: skip
        monkeypatch.setattr(service, "decide", real_decide)
        return real_decide(alert, now)

    monkeypatch.setattr(service, "decide", decide_after_the_other_request_stored_it)
    answer = client.post(
        "/api/v1/cap",
        content=alert("RACE-1", area="<circle>15.4,108.8 2</circle>"),
        headers={"Content-Type": "application/cap+xml", **world.headers("duyet-huyen")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicate"] and answer.json()["reason"] == "stored by the other request"
    with session_scope(world.engine) as session:
        assert session.exec(select(Broadcast)).all() == []
