"""Which stream addresses and lengths a live relay may have: the pure rules (no database, no broker)."""

from __future__ import annotations

import pytest

from broadcast_server.domain.relay import (
    MAX_RELAY_S,
    MIN_RELAY_S,
    relay_duration_problem,
    stream_url_problem,
    stream_url_refusal,
)
from mqtt_contract import Channel, InvalidMessage, validate


@pytest.mark.parametrize(
    "url",
    [
        "https://radio.example.vn/vov1.mp3",
        "http://113.160.1.2:8000/live",
        "https://stream.example.vn/hls/kenh1/index.m3u8?token=abc",
        "http://[2001:db8::1]:8000/live",
    ],
)
def test_addresses_clusters_can_use_are_accepted_and_pass_the_contract(url: str) -> None:
    assert stream_url_problem(url) is None
    command = {
        "v": 1,
        "id": "c-1",
        "type": "play",
        "issued_at": "2026-12-08T11:00:00Z",
        "expires_at": "2026-12-08T12:00:00Z",
        "play": {"broadcast_id": "b-1", "priority": "normal", "stream": {"url": url, "duration_s": 1800}},
    }
    validate(Channel.COMMAND, command)  # what the rule lets through, the agent's schema takes


@pytest.mark.parametrize(
    ("url", "words", "words_vi"),
    [
        ("", "empty", "Hãy nhập địa chỉ"),
        ("rtsp://camera.example.vn/1", "http:// or https://", "phải bắt đầu bằng http:// hoặc https://"),
        ("radio.example.vn/live", "http:// or https://", "phải bắt đầu bằng http:// hoặc https://"),
        ("https://radio.example.vn/live now", "no spaces", "không được có dấu cách"),
        ("https:///live", "with a host", "không hợp lệ: cần dạng http://tên-máy"),
        ("https://phat:mat-khau@radio.example.vn/live", "password", "tên đăng nhập hay mật khẩu"),
        ("http://[radio.example.vn/live", "not a valid address", "không hợp lệ"),
        ("http://radio.example.vn:99999/live", "not a valid address", "không hợp lệ"),
        ("https://radio.example.vn/" + "a" * 2000, "longer than 2000", "dài quá 2000 ký tự"),
    ],
)
def test_addresses_that_would_fail_or_leak_are_refused_with_the_reason(url: str, words: str, words_vi: str) -> None:
    problem = stream_url_problem(url)
    assert problem is not None and words in problem
    refusal = stream_url_refusal(url)  # the same rule, said in Vietnamese for the console and schedule files
    assert refusal is not None and refusal.en == problem and words_vi in refusal.vi


def test_a_relay_lasts_from_a_minute_to_four_hours_as_the_contract_allows() -> None:
    assert relay_duration_problem(MIN_RELAY_S) is None and relay_duration_problem(MAX_RELAY_S) is None
    for wrong in (0, MIN_RELAY_S - 1, MAX_RELAY_S + 1):
        assert "between 60 and 14400" in (relay_duration_problem(wrong) or "")
    too_long = {"url": "https://radio.example.vn/a", "duration_s": MAX_RELAY_S + 1}
    with pytest.raises(InvalidMessage):
        validate(
            Channel.COMMAND,
            {
                "v": 1,
                "id": "c-1",
                "type": "play",
                "issued_at": "2026-12-08T11:00:00Z",
                "expires_at": "2026-12-08T12:00:00Z",
                "play": {"broadcast_id": "b-1", "priority": "normal", "stream": too_long},
            },
        )
