"""Commands are checked with a schema specialised to their type (mqtt_contract/specialised.py): it must
give the same verdict as the whole schema on every message, valid or not."""

from __future__ import annotations

import copy
import json

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_contract import Channel, InvalidMessage, validate
from mqtt_contract.codec import _validator, schema_document
from mqtt_contract.specialised import specialise
from tests.contract.test_protocol_examples import _examples

COMMANDS = [json.loads(text) for channel, text in _examples() if channel is Channel.COMMAND]
TYPES = schema_document(Channel.COMMAND)["properties"]["type"]["enum"]
FIELDS = sorted({key for command in COMMANDS for key in command})
VALUES = [command[key] for command in COMMANDS for key in command]


def _whole_schema_verdict(message: dict) -> str | None:
    """None if the whole schema accepts the message, else its reason."""
    try:
        _validator(Channel.COMMAND)(message)
    except fastjsonschema.JsonSchemaException as exc:
        return exc.message
    return None


def _verdict(message: dict) -> str | None:
    try:
        validate(Channel.COMMAND, message)
    except InvalidMessage as exc:
        return exc.reason
    return None


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(COMMANDS),
    kind=st.one_of(st.sampled_from(TYPES), st.text(max_size=8), st.integers(), st.none()),
    dropped=st.lists(st.sampled_from(FIELDS), max_size=2),
    added=st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(VALUES)), max_size=2),
)
def test_the_specialised_check_agrees_with_the_whole_schema(base, kind, dropped, added) -> None:
    message = copy.deepcopy(base)
    message["type"] = kind
    for key in dropped:
        message.pop(key, None)
    for key, value in added:
        message[key] = copy.deepcopy(value)
    assert _verdict(message) == _whole_schema_verdict(message)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c["type"])
def test_every_example_passes_both_ways(command: dict) -> None:
    assert _whole_schema_verdict(command) is None and _verdict(command) is None


def test_only_ifs_on_the_field_are_decided() -> None:
    schema = {
        "properties": {"type": {"enum": ["a", "b"]}},
        "if": {"properties": {"type": {"const": "a"}}},
        "then": {"required": ["x"]},
        "else": {"not": {"required": ["x"]}},
        "allOf": [
            {"if": {"properties": {"other": {"const": 1}}}, "then": {"required": ["y"]}},  # another field: kept
            {"if": {"properties": {"type": {"const": "b"}}}, "then": {"not": {"required": ["y", "z"]}}},
            True,
        ],
    }
    assert specialise(schema, "type", "a") == {
        "properties": {"type": {"enum": ["a", "b"]}},
        "allOf": [
            {"required": ["x"]},
            {"if": {"properties": {"other": {"const": 1}}}, "then": {"required": ["y"]}},
            True,
        ],
    }
    b = specialise(schema, "type", "b")
    # "x absent" as a false property, without raising, and without x's own schema (none here)
    assert b["properties"] == {"type": {"enum": ["a", "b"]}, "x": False}
    assert b["allOf"] == [
        {"if": {"properties": {"other": {"const": 1}}}, "then": {"required": ["y"]}},
        {"not": {"required": ["y", "z"]}},  # "not both": not the same as a false property, left alone
        True,
    ]


def test_a_member_the_type_forbids_loses_its_schema() -> None:
    """A play command's checker holds no schedule schema: the member is `false` for it (same verdict, less code)."""
    play = specialise(schema_document(Channel.COMMAND), "type", "play")
    assert play["properties"]["schedule"] is False and play["properties"]["keys"] is False
    assert play["properties"]["play"] == {"$ref": "#/definitions/play"}
    assert "schedule" not in json.dumps(play.get("allOf", []))
