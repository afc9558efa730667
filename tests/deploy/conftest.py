"""Fixtures for deployment tests: an MQTT broker of each kind the contract is tested on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bcast.broker import LocalBroker
from bcast.nats_broker import NatsBroker, nats_server_binary

BROKER_KINDS = ["mosquitto", "nats"]


@pytest.fixture(params=BROKER_KINDS)
def mqtt_broker(request: pytest.FixtureRequest) -> Iterator[LocalBroker | NatsBroker]:
    """A broker of our own on a free loopback port: mosquitto, or nats-server with its MQTT listener."""
    if request.param == "nats":
        if nats_server_binary() is None:
            pytest.skip("nats-server is not installed")
        with NatsBroker() as broker:
            yield broker
        return
    with LocalBroker() as broker:
        if broker.kind != "mosquitto":
            pytest.skip(f"mosquitto is not installed (got {broker.kind})")
        yield broker
