"""Technicians' commands to one cluster (volume, stop, ping, amplifier) over the MQTT bus, scoped and audited."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from broadcast_server.accounts.principal import Action, Principal, ensure_can
from broadcast_server.accounts.scope import OutOfScope, unit_in_scope, unit_label
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.models import Cluster
from broadcast_server.services.dispatch import CommandPublisher
from mqtt_contract.times import isoformat


class DeviceCommandType(StrEnum):
    VOLUME = "volume"  # set the output level 0-100 (kept across restarts)
    STOP = "stop"  # stop what is playing now
    PING = "ping"  # answered with a pong report and a heartbeat at once
    AMPLIFIER = "amplifier"  # 'off' holds the amplifier off (nothing plays, emergencies included); 'on' ends it


AMPLIFIER_STATES = ("on", "off")


class DeviceCommandError(ValueError):
    """A device command that cannot be sent; the message says why."""


def device_command(
    kind: DeviceCommandType, *, now: datetime, ttl_s: int, volume: int | None = None, amplifier: str | None = None
) -> dict[str, Any]:
    """The contract v1 command (pure: no I/O)."""
    command: dict[str, Any] = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": kind.value,
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=ttl_s)),
    }
    if kind is DeviceCommandType.VOLUME:
        if volume is None or not 0 <= volume <= 100:
            raise DeviceCommandError("a volume command needs volume between 0 and 100")
        command["volume"] = volume
    elif volume is not None:
        raise DeviceCommandError(f"a {kind.value} command takes no volume")
    if kind is DeviceCommandType.AMPLIFIER:
        if amplifier not in AMPLIFIER_STATES:
            raise DeviceCommandError("an amplifier command needs amplifier 'on' or 'off'")
        command["amplifier"] = amplifier
    elif amplifier is not None:
        raise DeviceCommandError(f"a {kind.value} command takes no amplifier")
    return command


def send_device_command(
    session: Session,
    publisher: CommandPublisher,
    principal: Principal | None,
    cluster_id: str,
    kind: DeviceCommandType,
    *,
    volume: int | None = None,
    amplifier: str | None = None,
    ttl_s: int = 300,
    ip: str | None = None,
    timeout_s: float = 10.0,
) -> tuple[dict[str, Any], bool]:
    """Publish one command to a cluster in the principal's scope; (command, acknowledged by the broker)."""
    ensure_can(principal, Action.DEVICE_COMMAND)
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise DeviceCommandError(f"cluster {cluster_id!r} does not exist")
    if principal is not None and not unit_in_scope(session, principal, cluster.unit_id):
        where = unit_label(session, cluster.unit_id)
        raise OutOfScope(f"cluster {cluster_id!r} of unit {cluster.unit_id} ({where}) is outside your scope")
    command = device_command(kind, now=utcnow(), ttl_s=ttl_s, volume=volume, amplifier=amplifier)
    acknowledged = command["id"] in publisher.publish_commands([(cluster_id, command)], timeout_s=timeout_s)
    record(
        session,
        principal=principal,
        action=f"device.{kind.value}",
        object_type="cluster",
        object_id=cluster_id,
        detail={"command_id": command["id"], "volume": volume, "amplifier": amplifier, "acknowledged": acknowledged},
        ip=ip,
        unit_id=cluster.unit_id,
    )
    return command, acknowledged
