"""Stop a broadcast everywhere it has not finished: a bulletin sent by mistake, or an alert that is over.

Deliveries not yet sent are settled `stopped` here and never go out; every cluster holding the broadcast
gets a signed `stop` naming it, which cuts it if it plays, ends its repeats, or drops it if it waits
(downloading, for its time or for the speaker), and leaves whatever else plays alone. Each cluster's
play command then reports `stopped`, which settles its delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select, update

from broadcast_server.accounts.principal import Action, Principal, ensure_can
from broadcast_server.audit.log import record
from broadcast_server.db.types import utcnow
from broadcast_server.models import Broadcast, Delivery, DeliveryState
from broadcast_server.services.device_commands import DeviceCommandType, device_command
from broadcast_server.services.dispatch import CommandPublisher, DispatchError, ensure_broadcast_in_scope, target_unit

UNFINISHED = (DeliveryState.QUEUED.value, DeliveryState.SENT.value)


@dataclass(frozen=True)
class BroadcastStopped:
    broadcast_id: str
    never_sent: int  # deliveries settled 'stopped' before their command went out
    told: int  # clusters sent a stop
    acknowledged: int  # of those, stops the broker took


def stop_command(broadcast_id: str, *, ttl_s: int) -> dict[str, Any]:
    """The contract v1 command that stops one broadcast on a cluster (pure: no I/O)."""
    return {**device_command(DeviceCommandType.STOP, now=utcnow(), ttl_s=ttl_s), "stop": {"broadcast_id": broadcast_id}}


def check_may_stop(session: Session, principal: Principal, broadcast: Broadcast) -> None:
    """Raise NotPermitted or OutOfScope unless the principal may send such a broadcast to its whole target."""
    ensure_can(principal, Action.EMERGENCY if broadcast.priority == "emergency" else Action.BROADCAST)
    ensure_broadcast_in_scope(session, principal, broadcast.id)


def stop_broadcast(
    session: Session,
    publisher: CommandPublisher,
    principal: Principal | None,
    broadcast_id: str,
    *,
    ttl_s: int,
    ip: str | None = None,
    timeout_s: float = 60.0,
) -> BroadcastStopped:
    """Stop the broadcast on every cluster whose delivery is unfinished; audited. None is the system.

    The stop lives as long as the broadcast could still play (its expiry), and at least `ttl_s`."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise DispatchError(f"broadcast {broadcast_id!r} does not exist")
    if principal is not None:
        check_may_stop(session, principal, broadcast)
    unfinished = session.exec(
        select(Delivery.cluster_id).where(Delivery.broadcast_id == broadcast_id, col(Delivery.state).in_(UNFINISHED))
    ).all()
    now = utcnow()
    never_sent = session.exec(
        update(Delivery)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.state == DeliveryState.QUEUED)  # type: ignore[arg-type]
        .values(state=DeliveryState.STOPPED.value, updated_at=now)
    ).rowcount
    # Queued ones are told too: a dispatch in progress may have published its command already.
    live_s = max(ttl_s, int((broadcast.expires_at - now).total_seconds()) + 60)
    commands = [(cluster_id, stop_command(broadcast_id, ttl_s=live_s)) for cluster_id in unfinished]
    acknowledged = publisher.publish_commands(commands, timeout_s=timeout_s) if commands else set()
    result = BroadcastStopped(broadcast_id, never_sent, len(commands), len(acknowledged))
    record(
        session,
        principal=principal,
        action="broadcast.stop",
        object_type="broadcast",
        object_id=broadcast_id,
        detail={"never_sent": never_sent, "told": result.told, "acknowledged": result.acknowledged},
        ip=ip,
        unit_id=target_unit(session, broadcast.target.get("unit_ids", ()), broadcast.target.get("cluster_ids", ())),
    )
    return result
