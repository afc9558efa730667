"""Over-the-air key rotation: the `keys` command that gives every cluster the server's trusted key set.

The command id is derived from the key set, so pushing the same set again is harmless (an agent acts on
an id once) and the clusters that adopted a set are those with an `applied` report for that id.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from broadcast_server.db.session import session_scope
from broadcast_server.models import Cluster, PlaybackReport
from broadcast_server.services.dispatch import CommandPublisher
from mqtt_contract.times import isoformat

# Long enough for a cluster that is off for a week-end to get it from its broker session when back.
KEYS_TTL = timedelta(days=7)


def key_set_id(public_keys: list[str]) -> str:
    return "keys-" + hashlib.sha256(" ".join(sorted(public_keys)).encode()).hexdigest()[:16]


def keys_command(public_keys: list[str], now: datetime) -> dict[str, Any]:
    """The contract v1 `keys` command (unsigned; the bus signs it with the active key)."""
    return {
        "v": 1,
        "id": key_set_id(public_keys),
        "type": "keys",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + KEYS_TTL),
        "keys": sorted(public_keys),
    }


def push_key_set(engine: Engine, publisher: CommandPublisher, public_keys: list[str], now: datetime) -> int:
    """Send the key set to every cluster; return how many. Who adopted it: ``clusters_missing_key_set``."""
    with session_scope(engine) as session:
        cluster_ids = list(session.exec(select(Cluster.id)))
    command = keys_command(public_keys, now)
    publisher.publish_commands([(cid, command) for cid in cluster_ids])
    return len(cluster_ids)


def clusters_missing_key_set(engine: Engine, public_keys: list[str]) -> list[str]:
    """Clusters that have not reported the key set `applied` yet (they would refuse the new key's commands)."""
    with session_scope(engine) as session:
        cluster_ids = set(session.exec(select(Cluster.id)))
        applied = set(
            session.exec(
                select(PlaybackReport.cluster_id).where(
                    PlaybackReport.command_id == key_set_id(public_keys), PlaybackReport.status == "applied"
                )
            )
        )
    return sorted(cluster_ids - applied)
