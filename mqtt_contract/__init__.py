"""MQTT contract, version 1: topic names and JSON Schemas shared by the server, the agent and the docs.

The schema files under ``schemas/v1`` are the single source of truth; ``docs/protocol.md`` describes
them and tests check that every message either side sends validates against them.
"""

from mqtt_contract.codec import InvalidMessage, decode, encode, validate
from mqtt_contract.topics import (
    CLUSTER_ID_PATTERN,
    QOS,
    RETAINED,
    Channel,
    InvalidTopic,
    Topics,
)

__all__ = [
    "CLUSTER_ID_PATTERN",
    "Channel",
    "InvalidMessage",
    "InvalidTopic",
    "QOS",
    "RETAINED",
    "Topics",
    "decode",
    "encode",
    "validate",
]
