"""Encode and decode contract messages, validated against the v1 JSON Schemas on both directions."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from mqtt_contract.specialised import specialise
from mqtt_contract.times import parse_time
from mqtt_contract.topics import Channel

MAX_PAYLOAD_BYTES = 64 * 1024  # a 48-hour schedule window is a few KB; larger payloads are refused unread


class InvalidMessage(ValueError):
    """A payload that is not valid JSON or does not match its channel's schema."""

    def __init__(self, channel: Channel, reason: str) -> None:
        super().__init__(f"invalid {channel.value} message: {reason}")
        self.channel = channel
        self.reason = reason


def schema_document(channel: Channel) -> dict[str, Any]:
    """The JSON Schema of one channel, as shipped in the package."""
    text = resources.files("mqtt_contract").joinpath(f"schemas/v1/{channel.value}.schema.json").read_text()
    return json.loads(text)


def _is_time(text: str) -> bool:
    """A date-time the receiver can use: fastjsonschema's pattern alone lets "0000-01-01T00:00:00Z" through."""
    try:
        parse_time(text)
    except (ValueError, OverflowError):
        return False
    return True


def _compiled(schema: dict[str, Any]):
    return fastjsonschema.compile(schema, formats={"date-time": _is_time})


@cache
def _validator(channel: Channel):
    return _compiled(schema_document(channel))


@cache
def _types(channel: Channel) -> frozenset[str]:
    """The values of the schema's `type` enum (commands), or none."""
    kinds = schema_document(channel).get("properties", {}).get("type", {}).get("enum", ())
    return frozenset(kind for kind in kinds if isinstance(kind, str))


@cache
def _validator_for_type(channel: Channel, kind: str):
    """The schema with its ifs on `type` decided for this type; compiled on first use (each costs memory,
    and a device receives only a few types)."""
    return _compiled(specialise(schema_document(channel), "type", kind))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which no column, report or JSON response can hold
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every payload: json.loads with hooks builds a new one per call (a sixth of decode's time).
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def validate(channel: Channel, message: dict[str, Any]) -> dict[str, Any]:
    """Return the message if it matches the schema of its channel, else raise InvalidMessage."""
    kind = message.get("type")
    if isinstance(kind, str) and kind in _types(channel):
        fast = _validator_for_type(channel, kind)
        try:
            return fast(message)
        except fastjsonschema.JsonSchemaException:
            pass  # the whole schema decides, and words the reason as it always has
    try:
        return _validator(channel)(message)
    except fastjsonschema.JsonSchemaException as exc:
        raise InvalidMessage(channel, exc.message) from None


def encode(channel: Channel, message: dict[str, Any]) -> bytes:
    """Validate and serialise; sending an invalid message is a bug on our side, so it raises."""
    validate(channel, message)
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def decode(channel: Channel, payload: bytes) -> dict[str, Any]:
    """Parse and validate a received payload; anything wrong raises InvalidMessage, never another error."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(channel, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        message = _DECODER.decode(payload.decode("utf-8"))  # the contract's payloads are UTF-8 (RFC 8259)
    except RecursionError:  # "[[[[..." a few thousand deep: would escape and kill the caller's thread
        raise InvalidMessage(channel, "JSON nested too deeply") from None
    except ValueError as exc:  # bad UTF-8 or JSON, NaN, Infinity, 1e999, an integer of over 4300 digits
        raise InvalidMessage(channel, f"not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise InvalidMessage(channel, "not a JSON object")
    return validate(channel, message)
