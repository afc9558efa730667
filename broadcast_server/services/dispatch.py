"""Play now: create a broadcast with one delivery per targeted cluster, then publish one command each.

A broadcast plays a bulletin's audio file, or for a relay bulletin (tiếp sóng) its live stream."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, insert, update
from sqlmodel import Session, select

from broadcast_server.accounts.principal import Action, Principal, ensure_can
from broadcast_server.accounts.scope import OutOfScope, common_unit, target_outside_scope, unit_in_scope
from broadcast_server.audit.log import record
from broadcast_server.db.session import session_scope
from broadcast_server.db.types import utcnow
from broadcast_server.domain.targeting import resolve_target
from broadcast_server.models import (
    AudioAsset,
    Broadcast,
    BroadcastStatus,
    Bulletin,
    BulletinKind,
    BulletinStatus,
    Cluster,
    Delivery,
    DeliveryState,
)
from broadcast_server.services.tree_query import load_cluster_units, load_units
from mqtt_contract.times import isoformat

log = logging.getLogger(__name__)


MAX_START_AHEAD_S = 7 * 86400  # further ahead is a schedule's job (slots, the 48-hour window)
START_PAST_TOLERANCE_S = 60  # a form filled in at 17:59:30 for 18:00 and sent at 18:00:20 still goes, at once


class DispatchError(ValueError):
    """A broadcast that cannot be created; the message says why, in English, for API clients and logs."""


class CommandPublisher(Protocol):
    def publish_commands(self, commands: list[tuple[str, dict[str, Any]]], *, timeout_s: float = 60.0) -> set[str]:
        """Publish (cluster_id, command) pairs; return the ids of the commands the broker acknowledged."""


@dataclass(frozen=True)
class Target:
    unit_ids: tuple[int, ...] = ()
    cluster_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedDelivery:
    """A delivery stored by `create_broadcast`: which cluster gets which command id."""

    cluster_id: str
    command_id: str


@dataclass(frozen=True)
class Repeat:
    """Play `times` times (1-10), `interval_s` apart, as deployed platforms offer for alerts."""

    times: int = 1
    interval_s: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.times <= 10:
            raise DispatchError(f"repeat times must be within 1..10, not {self.times}")
        if self.times > 1 and not 60 <= self.interval_s <= 86400:
            raise DispatchError(f"repeat interval must be within 60..86400 s, not {self.interval_s}")


def create_broadcast(
    session: Session,
    bulletin_id: str,
    target: Target,
    *,
    ttl_s: int,
    now: datetime | None = None,
    principal: Principal | None = None,
    ip: str | None = None,
    repeat: Repeat = Repeat(),
    volume: int | None = None,
    start_at: datetime | None = None,
) -> tuple[Broadcast, list[PlannedDelivery]]:
    """Validate and store a broadcast and its deliveries (state queued); nothing is sent yet; audit it.

    `start_at` (aware, at most MAX_START_AHEAD_S ahead) has the clusters start it then instead of at once;
    they hold the command until that time, network or not. Clusters may still start it `ttl_s` after.

    With a principal, its role must allow broadcasting and the bulletin and every target must lie in its
    scope (`OutOfScope` names the first unit that does not). None is the system (demos, tests).
    """
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise DispatchError(f"bulletin {bulletin_id!r} does not exist")
    if principal is not None:
        ensure_can(principal, Action.BROADCAST)
        if not unit_in_scope(session, principal, bulletin.owner_unit_id):
            raise OutOfScope(f"bulletin {bulletin_id!r} belongs to a unit outside your scope")
        refusal = target_outside_scope(session, principal, target.unit_ids, target.cluster_ids)
        if refusal is not None:
            raise OutOfScope(refusal)
    if bulletin.status != BulletinStatus.APPROVED:
        raise DispatchError(f"bulletin {bulletin_id!r} is {bulletin.status}, not approved")
    relay = bulletin.kind == BulletinKind.RELAY
    if relay and not (bulletin.stream_url and bulletin.relay_duration_s):
        raise DispatchError(f"relay bulletin {bulletin_id!r} has no stream address or length")
    if not relay and bulletin.audio_asset_id is None:
        raise DispatchError(f"bulletin {bulletin_id!r} has no audio")
    if volume is not None and not 0 <= volume <= 100:
        raise DispatchError(f"volume must be within 0..100, not {volume}")
    cluster_ids = resolve_target(load_units(session), load_cluster_units(session), target.unit_ids, target.cluster_ids)
    now = now or utcnow()
    start_at = _checked_start(start_at, now)
    if relay:
        # A cluster back online during the relay still joins it for what is left: the command lives as long.
        ttl_s = max(ttl_s, int(bulletin.relay_duration_s or 0))
    broadcast = Broadcast(
        bulletin_id=bulletin.id,
        audio_asset_id=None if relay else bulletin.audio_asset_id,
        priority=bulletin.priority,
        target={"unit_ids": list(target.unit_ids), "cluster_ids": list(target.cluster_ids)},
        created_at=now,
        expires_at=(start_at or now) + timedelta(seconds=ttl_s),
        start_at=start_at,
        repeat_times=repeat.times,
        repeat_interval_s=repeat.interval_s if repeat.times > 1 else 0,
        volume=volume,
    )
    session.add(broadcast)
    session.flush()
    deliveries = [PlannedDelivery(c, uuid.uuid4().hex) for c in cluster_ids]
    if deliveries:
        # One executemany, no ORM objects: at province scale (10,000 clusters) building and flushing a
        # Delivery object each took about a second before the first command could go out (bench/fanout.py).
        session.exec(
            insert(Delivery),
            params=[
                {"broadcast_id": broadcast.id, "cluster_id": d.cluster_id, "command_id": d.command_id,
                 "state": DeliveryState.QUEUED.value, "updated_at": now}
                for d in deliveries
            ],
        )  # fmt: skip
    record(
        session,
        principal=principal,
        action="broadcast.create",
        object_type="broadcast",
        object_id=broadcast.id,
        detail={
            "bulletin_id": bulletin.id,
            "title": bulletin.title,
            "target": broadcast.target,
            "clusters": len(deliveries),
        },
        ip=ip,
        unit_id=target_unit(session, target.unit_ids, target.cluster_ids),
    )
    return broadcast, deliveries


def _checked_start(start_at: datetime | None, now: datetime) -> datetime | None:
    """The start time as stored (UTC), or None for at once; DispatchError when it is not one to use."""
    if start_at is None:
        return None
    if start_at.tzinfo is None:
        raise DispatchError("start_at needs a time zone offset, e.g. 2026-12-08T18:00:00+07:00")
    if start_at < now - timedelta(seconds=START_PAST_TOLERANCE_S):
        raise DispatchError(f"start_at {isoformat(start_at)} is in the past")
    if start_at > now + timedelta(seconds=MAX_START_AHEAD_S):
        raise DispatchError(f"start_at may be at most {MAX_START_AHEAD_S // 86400} days ahead; use a schedule instead")
    return start_at.astimezone(UTC) if start_at > now else None  # a minute ago or now: at once


def target_unit(session: Session, unit_ids: Iterable[int], cluster_ids: Iterable[str]) -> int | None:
    """The smallest unit holding a whole target (its units and its clusters' units): where its audit entries go."""
    cluster_units = session.exec(select(Cluster.unit_id).where(Cluster.id.in_(list(cluster_ids)))).all()  # type: ignore[attr-defined]
    return common_unit(session, [*unit_ids, *cluster_units])


def play_command(
    broadcast: Broadcast, what: AudioAsset | Bulletin, title: str, command_id: str, audio_url: str
) -> dict[str, Any]:
    """The contract v1 command that makes one cluster play a broadcast now.

    `what` is the audio asset it plays, or for a relay its bulletin (whose stream goes as `play.stream`)."""
    if isinstance(what, Bulletin):
        content: dict[str, Any] = {"stream": {"url": what.stream_url, "duration_s": what.relay_duration_s}}
    else:
        content = {
            "audio": {"url": audio_url, "sha256": what.id, "size_bytes": what.size_bytes, "duration_s": what.duration_s}
        }
    command: dict[str, Any] = {
        "v": 1,
        "id": command_id,
        "type": "play",
        "issued_at": isoformat(broadcast.created_at),
        "expires_at": isoformat(broadcast.expires_at),
        "play": {
            "broadcast_id": broadcast.id,
            "priority": broadcast.priority,
            "title": title[:200],
            **content,
        },
    }
    if broadcast.start_at is not None:
        command["play"]["start_at"] = isoformat(broadcast.start_at)
    if broadcast.repeat_times > 1:
        command["play"]["repeat"] = {"times": broadcast.repeat_times, "interval_s": broadcast.repeat_interval_s}
    if broadcast.volume is not None:
        command["play"]["volume"] = broadcast.volume
    return command


def send_broadcast(engine: Engine, publisher: CommandPublisher, broadcast_id: str, public_url: str) -> int:
    """Publish the queued deliveries of a broadcast; mark those the broker acknowledged as sent.

    Safe to call again after a crash: only deliveries still queued are published.
    """
    with session_scope(engine) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise DispatchError(f"broadcast {broadcast_id!r} does not exist")
        bulletin = session.get(Bulletin, broadcast.bulletin_id)
        asset = session.get(AudioAsset, broadcast.audio_asset_id) if broadcast.audio_asset_id else None
        assert bulletin is not None and (asset is not None or bulletin.kind == BulletinKind.RELAY)
        queued = session.exec(
            select(Delivery.cluster_id, Delivery.command_id).where(
                Delivery.broadcast_id == broadcast_id, Delivery.state == DeliveryState.QUEUED
            )
        ).all()
    what: AudioAsset | Bulletin = asset if asset is not None else bulletin
    url = f"{public_url.rstrip('/')}/api/v1/audio/{asset.id}" if asset is not None else ""
    commands = [(cluster_id, play_command(broadcast, what, bulletin.title, cmd, url)) for cluster_id, cmd in queued]
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


def resume_dispatching(
    engine: Engine,
    publisher: CommandPublisher,
    public_url: str,
    now: datetime,
    *,
    created_before: datetime | None = None,
) -> int:
    """Send what unexpired broadcasts still 'dispatching' owe (the server died, or the broker never acknowledged).

    Called when the server starts or takes the lead, then now and again by the leader with `created_before`
    (so a replica's dispatch in progress is left to it); commands go out with their stored ids, so a
    cluster that got one before the crash ignores it. Returns how many commands the broker acknowledged.
    """
    query = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.DISPATCHING, Broadcast.expires_at > now)
    if created_before is not None:
        query = query.where(Broadcast.created_at < created_before)
    with session_scope(engine) as session:
        unfinished = session.exec(query).all()
    sent = 0
    for broadcast_id in unfinished:
        log.info("broadcast %s was not fully dispatched: sending what is still queued", broadcast_id)
        sent += send_broadcast(engine, publisher, broadcast_id, public_url)
    return sent


def ensure_broadcast_in_scope(session: Session, principal: Principal, broadcast_id: str) -> None:
    """Raise OutOfScope unless the broadcast's bulletin and whole target lie in the principal's scope.

    A missing broadcast passes: the caller's own lookup answers "not found".
    """
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or principal.scope_unit_id is None:
        return
    bulletin = session.get(Bulletin, broadcast.bulletin_id)
    refusal = target_outside_scope(
        session, principal, broadcast.target.get("unit_ids", ()), broadcast.target.get("cluster_ids", ())
    )
    if refusal is None and bulletin is not None and not unit_in_scope(session, principal, bulletin.owner_unit_id):
        refusal = "its bulletin belongs to a unit outside your scope"
    if refusal is not None:
        raise OutOfScope(f"broadcast {broadcast_id!r} is outside your scope: {refusal}")
