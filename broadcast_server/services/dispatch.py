"""Play now: create a broadcast with one delivery per targeted cluster, then publish one command each."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from broadcast_server.db.session import session_scope
from broadcast_server.db.types import utcnow
from broadcast_server.domain.targeting import resolve_target
from broadcast_server.models import (
    AudioAsset,
    Broadcast,
    BroadcastStatus,
    Bulletin,
    BulletinStatus,
    Delivery,
    DeliveryState,
)
from broadcast_server.services.tree_query import load_cluster_units, load_units
from mqtt_contract.times import isoformat

log = logging.getLogger(__name__)


class DispatchError(ValueError):
    """A broadcast that cannot be created; the message says why, in English, for API clients and logs."""


class CommandPublisher(Protocol):
    def publish_commands(self, commands: list[tuple[str, dict[str, Any]]], *, timeout_s: float = 60.0) -> set[str]:
        """Publish (cluster_id, command) pairs; return the ids of the commands the broker acknowledged."""


@dataclass(frozen=True)
class Target:
    unit_ids: tuple[int, ...] = ()
    cluster_ids: tuple[str, ...] = ()


def create_broadcast(
    session: Session, bulletin_id: str, target: Target, *, ttl_s: int, now: datetime | None = None
) -> tuple[Broadcast, list[Delivery]]:
    """Validate and store a broadcast and its deliveries (state queued); nothing is sent yet."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise DispatchError(f"bulletin {bulletin_id!r} does not exist")
    if bulletin.status != BulletinStatus.APPROVED:
        raise DispatchError(f"bulletin {bulletin_id!r} is {bulletin.status}, not approved")
    if bulletin.audio_asset_id is None:
        raise DispatchError(f"bulletin {bulletin_id!r} has no audio")
    cluster_ids = resolve_target(load_units(session), load_cluster_units(session), target.unit_ids, target.cluster_ids)
    now = now or utcnow()
    broadcast = Broadcast(
        bulletin_id=bulletin.id,
        audio_asset_id=bulletin.audio_asset_id,
        priority=bulletin.priority,
        target={"unit_ids": list(target.unit_ids), "cluster_ids": list(target.cluster_ids)},
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    session.add(broadcast)
    session.flush()
    deliveries = [
        Delivery(broadcast_id=broadcast.id, cluster_id=c, command_id=uuid.uuid4().hex, updated_at=now)
        for c in cluster_ids
    ]
    session.add_all(deliveries)
    return broadcast, deliveries


def play_command(
    broadcast: Broadcast, asset: AudioAsset, title: str, command_id: str, audio_url: str
) -> dict[str, Any]:
    """The contract v1 command that makes one cluster play a broadcast now."""
    return {
        "v": 1,
        "id": command_id,
        "type": "play",
        "issued_at": isoformat(broadcast.created_at),
        "expires_at": isoformat(broadcast.expires_at),
        "play": {
            "broadcast_id": broadcast.id,
            "priority": broadcast.priority,
            "title": title[:200],
            "audio": {
                "url": audio_url,
                "sha256": asset.id,
                "size_bytes": asset.size_bytes,
                "duration_s": asset.duration_s,
            },
        },
    }


def send_broadcast(engine: Engine, publisher: CommandPublisher, broadcast_id: str, public_url: str) -> int:
    """Publish the queued deliveries of a broadcast; mark those the broker acknowledged as sent.

    Safe to call again after a crash: only deliveries still queued are published.
    """
    with session_scope(engine) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise DispatchError(f"broadcast {broadcast_id!r} does not exist")
        asset = session.get(AudioAsset, broadcast.audio_asset_id)
        bulletin = session.get(Bulletin, broadcast.bulletin_id)
        assert asset is not None and bulletin is not None
        queued = session.exec(
            select(Delivery.cluster_id, Delivery.command_id).where(
                Delivery.broadcast_id == broadcast_id, Delivery.state == DeliveryState.QUEUED
            )
        ).all()
    url = f"{public_url.rstrip('/')}/api/v1/audio/{asset.id}"
    commands = [(cluster_id, play_command(broadcast, asset, bulletin.title, cmd, url)) for cluster_id, cmd in queued]
    acknowledged = publisher.publish_commands(commands)
    now = utcnow()
    with session_scope(engine) as session:
        ids = list(acknowledged)
        for start in range(0, len(ids), 500):
            session.exec(
                update(Delivery)
                .where(Delivery.command_id.in_(ids[start : start + 500]), Delivery.state == DeliveryState.QUEUED)  # type: ignore[attr-defined]
                .values(state=DeliveryState.SENT.value, sent_at=now, updated_at=now)
            )
        if len(acknowledged) == len(commands):
            session.exec(
                update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.DISPATCHED.value)  # type: ignore[arg-type]
            )
    if len(acknowledged) < len(commands):
        log.warning(
            "broadcast %s: %d of %d commands not acknowledged by the broker",
            broadcast_id,
            len(commands) - len(acknowledged),
            len(commands),
        )
    return len(acknowledged)
