"""Fixtures of the fleet-health tests: a small fleet in a migrated database, and message builders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.messaging.mqtt_bus import Incoming
from broadcast_server.services.fleet_import import import_fleet
from mqtt_contract import Channel, validate
from mqtt_contract.times import isoformat

FLEET = """cluster_id,province,district,commune,village,lat,lon
a-1,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.3,108.8
a-2,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 2,15.3,108.8
a-3,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 3,15.3,108.8
b-1,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 1,15.3,108.7
b-2,Quảng Ngãi,Bình Sơn,Xã Bình Thạnh,Thôn 2,15.3,108.7
"""


@pytest.fixture
def fleet(engine):
    import_fleet(engine, parse_fleet_csv(FLEET))
    return engine


def status(cluster_id: str, state: str, seq: int, at: float, *, will: bool = False) -> Incoming:
    message = {"v": 1, "state": state, "seq": seq, "firmware": "bcast-agent/0.1.0"}
    if not will:
        message["ts"] = isoformat(datetime.fromtimestamp(at, UTC))
    return Incoming(cluster_id, Channel.STATUS, validate(Channel.STATUS, message), at)


def heartbeat(cluster_id: str, seq: int, at: float, **fields) -> Incoming:
    message = {
        "v": 1,
        "ts": isoformat(datetime.fromtimestamp(at, UTC)),
        "seq": seq,
        "uptime_s": 1.0,
        "firmware": "bcast-agent/0.1.0",
        "amplifier": "on",
        "clock_offset_s": None,
        "last_error": None,
        **fields,
    }
    return Incoming(cluster_id, Channel.HEARTBEAT, validate(Channel.HEARTBEAT, message), at)
