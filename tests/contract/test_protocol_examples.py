"""docs/protocol.md shows the contract by example: every example must pass the schemas the code uses, and
every command type of the schema must have one, so the document cannot drift from the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mqtt_contract import Channel, decode
from mqtt_contract.codec import schema_document

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE = re.compile(r"<!-- channel: (\w+) -->\s*```json\n(.*?)\n```", re.S)


def _examples() -> list[tuple[Channel, str]]:
    return [(Channel(name), text) for name, text in EXAMPLE.findall(PROTOCOL.read_text(encoding="utf-8"))]


def test_the_document_has_an_example_of_every_channel() -> None:
    assert {channel for channel, _ in _examples()} == set(Channel)


@pytest.mark.parametrize(("channel", "text"), _examples(), ids=lambda value: getattr(value, "value", "example"))
def test_every_example_passes_its_channels_schema(channel: Channel, text: str) -> None:
    decode(channel, text.encode())


def test_every_command_type_has_an_example() -> None:
    shown = {json.loads(text)["type"] for channel, text in _examples() if channel is Channel.COMMAND}
    assert shown == set(schema_document(Channel.COMMAND)["properties"]["type"]["enum"])
