"""CAP 1.2 parsing, areas and the airing policy: pure, no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast_server.cap.alert import CapError, Circle, parse_alert
from broadcast_server.cap.area import clusters_in, distance_km, in_circle, in_polygon
from broadcast_server.cap.policy import Action, decide
from tests.cap.samples import SQUARE, alert, resource, tone_wav

NOW = datetime(2026, 10, 29, 7, 30, tzinfo=UTC)


def test_a_storm_warning_is_read_in_vietnamese() -> None:
    parsed = parse_alert(alert())
    assert (parsed.identifier, parsed.status, parsed.msg_type) == ("VNDMA-2026-1021", "Actual", "Alert")
    info = parsed.info_for("vi")
    assert info is not None and info.language == "vi-VN" and info.event == "Bão"
    assert info.text == (
        "Cảnh báo bão số 12. Bão số 12 đổ bộ vào vùng biển Quảng Ngãi trong đêm nay, gió giật cấp 12. "
        "Bà con vùng ven biển di dời đến nơi an toàn, tàu thuyền vào bờ ngay."
    )
    assert info.areas[0].description == "Xã Bình Hải, huyện Bình Sơn" and len(info.areas[0].polygons[0]) == 5


def test_a_recording_is_taken_from_the_first_audio_resource() -> None:
    wav = tone_wav(0.1)
    picture = resource(mime="image/png", uri="http://anh.example/ban-do.png", description="Bản đồ")
    document = alert(resource=picture + resource(mime="audio/x-wav; codecs=1", content=wav, digest="AB" * 20))
    info = parse_alert(document).info_for("vi")
    assert info is not None and len(info.resources) == 2
    recording = info.recording
    assert recording is not None and recording.content == wav and recording.audio_suffix == ".wav"
    assert recording.digest == "ab" * 20 and recording.description == "Bản tin ghi âm"
    assert parse_alert(alert(resource=picture)).info_for("vi").recording is None  # a map is not read out
    linked = parse_alert(alert(resource=resource(mime="audio/mpeg", uri="https://tin.example/bao.mp3", size=9)))
    assert (linked.info_for("vi").recording.uri, linked.info_for("vi").recording.size) == (
        "https://tin.example/bao.mp3",
        9,
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"not xml at all", "not well-formed XML"),
        (alert().replace(b"<identifier>VNDMA-2026-1021</identifier>", b""), "<identifier> is missing"),
        (alert().replace(b"cap:1.2", b"cap:1.1"), "not <alert> in the CAP 1.2 namespace"),
        (alert(status="Rumour"), "<status> 'Rumour'"),
        (alert(msg_type="Cancel"), "needs <references>"),
        (alert(area="<polygon>15.2,108.7 15.2,108.9 15.4,108.9</polygon>"), "at least four points"),
        (alert(area="<polygon>95,108 95,109 96,109 95,108</polygon>"), "outside the globe"),
        (alert(area="<circle>15.3,108.8 0</circle>"), "radius 0.0 km"),
        (alert().replace(b"2026-10-29T14:00:00+07:00", b"yesterday"), "<sent> 'yesterday'"),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]>'
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&y;</alert>',
            "refused XML",
        ),
        (b" " * (9 * 1024 * 1024), "exceeds"),
        (alert("x" * 256), "<identifier> is 256 characters long"),
        (alert().replace(b"<instruction>", b"<instruction>" + "Sơ tán. ".encode() * 2600), "characters to speak"),
        (alert(resource="<resource><mimeType>audio/wav</mimeType></resource>"), "<resourceDesc> is missing"),
        (alert(resource=resource(content=b"x").replace("<derefUri>eA==", "<derefUri>e!A")), "<derefUri> is not base64"),
        (alert(resource=resource(uri="http://x/a.wav", digest="abc")), "<digest> 'abc' is not a SHA-1"),
        (alert(resource=resource(uri="http://x/a.wav", size=-1)), "<size> -1 is negative"),
        (alert(resource=resource(uri="http://x/a.wav").replace("</mimeType>", "</mimeType><size>1 MB</size>")),
         "<size> '1 MB'"),
    ],
    ids=["not-xml", "no-id", "cap-1.1", "bad-status", "cancel-without-refs", "open-ring", "off-globe",
         "zero-circle", "bad-time", "entities", "huge", "long-id", "long-text", "resource-no-desc",
         "resource-bad-base64", "resource-bad-digest", "resource-negative-size", "resource-size-words"],
)  # fmt: skip
def test_what_is_not_a_usable_alert_is_refused_with_the_reason(document: bytes, problem: str) -> None:
    with pytest.raises(CapError, match=None) as caught:
        parse_alert(document)
    assert problem in str(caught.value)


def test_polygons_and_circles_select_the_clusters_inside() -> None:
    ring = tuple(tuple(map(float, p.split(","))) for p in SQUARE.split())
    assert in_polygon(15.3, 108.8, ring) and not in_polygon(15.5, 108.8, ring) and not in_polygon(15.3, 108.6, ring)
    assert 110 < distance_km(15.0, 108.0, 16.0, 108.0) < 112  # a degree of latitude
    assert in_circle(15.31, 108.81, Circle(15.3, 108.8, 2.0)) and not in_circle(15.4, 108.8, Circle(15.3, 108.8, 2.0))
    areas = parse_alert(alert(area=f"<polygon>{SQUARE}</polygon><circle>16.0,108.0 5</circle>")).infos[1].areas
    clusters = [("in-square", 15.3, 108.8), ("in-circle", 16.01, 108.01), ("outside", 15.6, 108.8)]
    assert clusters_in(areas, clusters) == ["in-square", "in-circle"]


@pytest.mark.parametrize(
    ("document", "action"),
    [
        (alert(), Action.AIR),
        (alert(urgency="Expected", severity="Extreme"), Action.AIR),
        (alert(severity="Moderate"), Action.REVIEW),
        (alert(urgency="Future"), Action.REVIEW),
        (alert(status="Exercise"), Action.RECORD),
        (alert(status="Test"), Action.RECORD),
        (alert(expires="2026-10-29T13:00:00+07:00"), Action.RECORD),  # before NOW (14:30 in Vietnam)
        (alert(area=""), Action.RECORD),
        (alert(msg_type="Cancel", references="canhbao@phongchongthientai.gov.vn,VNDMA-1,2026-10-29T13:00:00+07:00"),
         Action.CANCEL),
    ],
    ids=["severe-now", "extreme-expected", "moderate", "future", "exercise", "test", "expired", "no-area", "cancel"],
)  # fmt: skip
def test_the_policy_airs_only_actual_severe_and_urgent_alerts_at_once(document: bytes, action: Action) -> None:
    assert decide(parse_alert(document), NOW).action is action


def test_an_update_replaces_what_its_reference_started() -> None:
    update = alert("VNDMA-2", msg_type="Update", references="canhbao@phongchongthientai.gov.vn,VNDMA-1,x")
    decision = decide(parse_alert(update), NOW)
    assert decision.action is Action.AIR and decision.replaces


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.builds(lambda cut, junk: alert()[:cut] + junk, st.integers(0, 2500), st.binary(max_size=20)),
    )
)
def test_any_bytes_give_an_alert_or_a_cap_error_never_another_error(document: bytes) -> None:
    try:
        parse_alert(document)
    except CapError:
        pass
