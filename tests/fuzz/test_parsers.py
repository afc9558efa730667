"""Hypothesis on the parsers that read what others wrote: schedule files, MQTT payloads, bulletin text.

Each parser has one promise: any input gives a result or the parser's own named error, never another
exception (which would crash the CLI, or kill the thread that received the payload). Inputs are
arbitrary, and mutations of valid documents so the fuzzing gets past the first check.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast_server.scheduling.schedule_file import ScheduleFileError, ScheduleSpec, parse_schedule_yaml
from mqtt_contract import Channel, InvalidMessage, decode, encode, validate
from mqtt_contract.times import parse_time

EXAMPLE_WEEK = Path(__file__).resolve().parents[2] / "schedules" / "example-week.yaml"
FUZZ = settings(max_examples=200, derandomize=True, deadline=None, database=None)

# JSON-ish values with the awkward corners: huge and negative numbers, NUL and long strings, nesting.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**40, -1, 0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        ["", "\x00", "x" * 5000, "2024-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _mutated(document: Any, data: st.DataObject, keys: list[str]) -> Any:
    """Replace, add or delete a few entries anywhere in a nested structure of dicts and lists."""
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        containers = [document]
        node = document
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), label="descend"):
            node = node[data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))]
            if isinstance(node, (dict, list)):
                containers.append(node)
        target = containers[-1]
        if isinstance(target, dict):
            key = data.draw(st.sampled_from(keys) | st.text(max_size=8) | st.sampled_from(sorted(target) or ["x"]))
            if key in target and data.draw(st.booleans(), label="delete"):
                del target[key]
            else:
                target[key] = data.draw(_VALUES, label="value")
        elif isinstance(target, list):
            if target and data.draw(st.booleans(), label="delete"):
                del target[data.draw(st.integers(0, len(target) - 1))]
            else:
                target.append(data.draw(_VALUES, label="value"))
    return document


def _byte_mutations(raw: bytes, data: st.DataObject) -> bytes:
    """Flip, insert or drop a few bytes of an encoded document."""
    buffer = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 6), label="byte edits")):
        at = data.draw(st.integers(0, len(buffer)), label="at")
        kind = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if kind == "insert" or at == len(buffer):
            buffer.insert(at, byte)
        elif kind == "replace":
            buffer[at] = byte
        else:
            del buffer[at]
    return bytes(buffer)


# ---------------------------------------------------------------------------------------------------------
# Schedule files


def _parse_schedule(text: str) -> ScheduleSpec | None:
    try:
        return parse_schedule_yaml(text)
    except ScheduleFileError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return None


def test_example_week_parses() -> None:
    """The seed of the mutations is itself valid, so the mutations start from the real thing."""
    assert _parse_schedule(EXAMPLE_WEEK.read_text(encoding="utf-8")) is not None


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _parse_schedule(text)


_YAML_SCALARS = st.sampled_from(
    [
        "2024-02-30",
        "2024-13-01",
        "!!float abc",
        "!!int 1" + "0" * 5000,
        "1" * 5000,
        "0x" + "f" * 40,
        "!!binary ZZZ",
        "!!timestamp 2024-01-01T25:00:00",
        "190:20:30",
        ".nan",
        "-.inf",
        "~",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "*undefined",
        "&a [*a]",
        "!!python/object/apply:os.system [true]",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=SECONDLY",
        "FREQ=WEEKLY;BYDAY=XX",
    ]
)


@FUZZ
@given(st.data())
def test_yaml_edge_scalars_in_a_valid_file(data: st.DataObject) -> None:
    """Each line's value swapped for a YAML scalar that PyYAML turns into an odd value or a plain ValueError."""
    lines = EXAMPLE_WEEK.read_text(encoding="utf-8").splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.sampled_from([i for i, line in enumerate(lines) if re.match(r"^\s*[\w-]+: \S", line)]))
        key = lines[index].split(":", 1)[0]
        lines[index] = f"{key}: {data.draw(_YAML_SCALARS)}"
    _parse_schedule("\n".join(lines))


@FUZZ
@given(st.data())
def test_mutated_valid_document(data: st.DataObject) -> None:
    document = yaml.safe_load(EXAMPLE_WEEK.read_text(encoding="utf-8"))
    keys = ["version", "timezone", "programmes", "groups", "slots", "id", "items", "title", "text", "audio_file"]
    keys += ["priority", "on_interrupt", "programme", "target", "units", "clusters", "start", "rule", "from", "until"]
    mutated = _mutated(document, data, keys)
    _parse_schedule(yaml.safe_dump(mutated, allow_unicode=True))


@FUZZ
@given(st.data())
def test_mutated_valid_text(data: st.DataObject) -> None:
    raw = EXAMPLE_WEEK.read_bytes()
    _parse_schedule(_byte_mutations(raw, data).decode("utf-8", errors="replace"))


@pytest.mark.timeout(60)
def test_alias_bomb_is_refused_without_expanding_it() -> None:
    """A billion-laughs value where a choice is expected: the error names its type, it is never printed out."""
    anchors = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
    )
    text = "anchors:\n" + "".join(f"  {line}\n" for line in anchors.splitlines())
    text += (
        "version: 1\nprogrammes:\n  - id: p\n    title: t\n    on_interrupt: *a9\n    items: [{title: t, text: x}]\n"
    )
    with pytest.raises(ScheduleFileError) as caught:
        parse_schedule_yaml(text)
    assert any("giá trị kiểu list" in p for p in caught.value.problems)
    assert len(str(caught.value)) < 2000


# ---------------------------------------------------------------------------------------------------------
# MQTT payloads

VALID = {
    Channel.STATUS: {"v": 1, "state": "online", "seq": 3, "ts": "2026-05-01T07:00:00.000Z", "firmware": "1.0"},
    Channel.HEARTBEAT: {
        "v": 1,
        "ts": "2026-05-01T07:00:00.000Z",
        "seq": 3,
        "uptime_s": 12.5,
        "firmware": "1.0",
        "volume": 80,
        "amplifier": "on",
        "playing": None,
        "clock_offset_s": 0.2,
    },
    Channel.REPORT: {
        "v": 1,
        "id": "r-1",
        "ts": "2026-05-01T07:00:05.000Z",
        "command_id": "c-1",
        "broadcast_id": "b-1",
        "status": "played",
        "started_at": "2026-05-01T07:00:00.000Z",
        "ended_at": "2026-05-01T07:00:04.000Z",
        "played_s": 4.0,
    },
    Channel.COMMAND: {
        "v": 1,
        "id": "c-1",
        "type": "ping",
        "issued_at": "2026-05-01T07:00:00.000Z",
        "expires_at": "2026-05-01T07:10:00.000Z",
    },
}
_TIME_KEYS = ("ts", "started_at", "ended_at", "issued_at", "expires_at")


def _decoded_or_refused(channel: Channel, payload: bytes) -> dict | None:
    """decode's promise, and what receivers rely on: every date-time it lets through can be parsed."""
    try:
        message = decode(channel, payload)
    except InvalidMessage as exc:
        assert exc.channel is channel
        return None
    assert isinstance(message, dict)
    for key in _TIME_KEYS:
        if isinstance(message.get(key), str):
            parse_time(message[key])
    json.dumps(message, allow_nan=False)  # nothing received can break a JSON response later (NaN, inf)
    return message


@pytest.mark.parametrize("channel", list(VALID), ids=lambda c: c.value)
def test_seed_messages_are_valid(channel: Channel) -> None:
    assert _decoded_or_refused(channel, encode(channel, VALID[channel])) == VALID[channel]


@FUZZ
@given(st.sampled_from(list(Channel)), st.binary(max_size=300))
def test_arbitrary_bytes(channel: Channel, payload: bytes) -> None:
    _decoded_or_refused(channel, payload)


@FUZZ
@given(st.sampled_from(list(VALID)), st.data())
def test_mutated_valid_messages(channel: Channel, data: st.DataObject) -> None:
    keys = sorted({*VALID[channel], *json.loads(json.dumps(_schema_keys(channel)))})
    message = _mutated(VALID[channel], data, keys)
    _decoded_or_refused(channel, json.dumps(message, ensure_ascii=data.draw(st.booleans())).encode())


@FUZZ
@given(st.sampled_from(list(VALID)), st.data())
def test_byte_mutated_valid_messages(channel: Channel, data: st.DataObject) -> None:
    _decoded_or_refused(channel, _byte_mutations(json.dumps(VALID[channel]).encode(), data))


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 50_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"NaN",
        b'{"v": 1, "ts": "2026-05-01T07:00:00Z", "seq": 1, "uptime_s": 1e999, "firmware": "x"}',
        b'{"v": 1, "ts": "2026-05-01T07:00:00Z", "seq": 1, "uptime_s": Infinity, "firmware": "x"}',
        b'{"v": 1, "ts": "0000-01-01T00:00:00Z", "seq": 1, "uptime_s": 1, "firmware": "x"}',
        b'{"v": 1, "ts": "9999-12-31T23:59:59-01:00", "seq": 1, "uptime_s": 1, "firmware": "x"}',
        b'{"v": 1, "ts": "2026-05-01T07:00:00Z", "seq": ' + b"1" * 5000 + b', "uptime_s": 1, "firmware": "x"}',
        b"\xff\xfe\x00\x00",
        b"x" * 70_000,
    ],
    ids=[
        "deep-array",
        "deep-object",
        "nan",
        "1e999",
        "infinity",
        "year-0",
        "year-10000",
        "5000-digits",
        "utf32",
        "huge",
    ],
)
def test_known_hostile_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(InvalidMessage):
        decode(Channel.HEARTBEAT, payload)


def _schema_keys(channel: Channel) -> list[str]:
    from mqtt_contract.codec import schema_document

    return sorted(schema_document(channel).get("properties", {}))


def test_validate_still_accepts_what_agents_send() -> None:
    """The stricter date-time check accepts the contract's own format with and without milliseconds."""
    for ts in ("2026-05-01T07:00:00Z", "2026-05-01T07:00:00.123Z", "2026-05-01T14:00:00+07:00"):
        validate(Channel.STATUS, {"v": 1, "state": "online", "seq": 1, "ts": ts})


# ---------------------------------------------------------------------------------------------------------
# The text normaliser (tests/audio/test_audio_normalize.py fuzzes it with Vietnamese-shaped pieces; here any
# Unicode, as pasted from a word processor: other scripts' digits, combining marks, controls, emoji)


@settings(FUZZ, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_normaliser_takes_any_text_and_leaves_no_ascii_digit(text: str) -> None:
    from audio.normalize import normalize_text

    spoken = normalize_text(text)
    assert isinstance(spoken, str)
    assert not re.search(r"[0-9]", spoken), (text, spoken)


@settings(FUZZ, max_examples=100)
@given(st.from_regex(r"[0-9]{20,60}([.,/:-][0-9]{1,30}){0,4}", fullmatch=True))
def test_normaliser_reads_very_long_numbers(text: str) -> None:
    from audio.normalize import normalize_text

    assert not re.search(r"[0-9]", normalize_text(text))


def test_an_amplifier_command_carries_on_or_off_and_nothing_else_does() -> None:
    base = VALID[Channel.COMMAND]
    for state in ("on", "off"):
        validate(Channel.COMMAND, {**base, "type": "amplifier", "amplifier": state})
    for wrong in (
        {**base, "type": "amplifier"},  # which way?
        {**base, "type": "amplifier", "amplifier": "toggle"},
        {**base, "type": "amplifier", "amplifier": True},
        {**base, "type": "ping", "amplifier": "off"},  # a ping that would switch the amplifier
    ):
        with pytest.raises(InvalidMessage):
            validate(Channel.COMMAND, wrong)
