"""How one status message, heartbeat or timeout changes a cluster's presence. Pure: no I/O, no clock.

The seq rule of ``domain.presence`` (Sparkplug's bdSeq) decides which status messages count. On top of
it, heartbeats matter: a cluster whose heartbeats stop is offline after the timeout even while its
retained status still says 'online' (a live TCP connection answering keepalives is not a healthy
cluster), and heartbeats coming back on a connection not known to be dead bring it back online.
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcast_server.domain.presence import Presence, apply_status
from broadcast_server.models import PresenceCause

# Causes after which the connection with that seq is known to be gone for good.
_DEAD = frozenset({PresenceCause.WILL.value, PresenceCause.CLEAN.value})


@dataclass(frozen=True)
class PresenceState:
    online: bool
    seq: int
    cause: str | None = None  # why it is as it is; None: nothing heard yet


@dataclass(frozen=True)
class Change:
    """One presence transition to record."""

    online: bool
    cause: str
    seq: int


Outcome = tuple[PresenceState, tuple[Change, ...]]


def on_status(state: PresenceState, status: str, seq: int, *, has_ts: bool) -> Outcome | None:
    """The state after a status message and the transitions it makes; None when the message is stale.

    An 'offline' with ``ts`` was published by the agent itself (clean shutdown); without, it is the will.
    """
    if status == "online":
        if seq == state.seq and state.online:
            return state, ()  # the same connection again: a retained 'online' redelivered
        if seq == state.seq and state.cause is not None:
            # The 'online' of a connection already timed out or dead, redelivered (e.g. when the server
            # resubscribes): that connection proved silent, so only its heartbeats can bring it back.
            return None
        after = apply_status(Presence(state.online, state.seq), status, seq)
        assert after is not None  # every 'online' is accepted by the seq rule
        changes: list[Change] = []
        if state.online:  # a newer connection while we thought the old one alive: it dropped unseen
            changes.append(Change(False, PresenceCause.RECONNECT.value, state.seq))
        changes.append(Change(True, PresenceCause.STATUS.value, seq))
        return PresenceState(True, seq, PresenceCause.STATUS.value), tuple(changes)
    after = apply_status(Presence(state.online, state.seq), status, seq)
    if after is None:
        return None
    cause = PresenceCause.CLEAN.value if has_ts else PresenceCause.WILL.value
    if state.online:
        return PresenceState(False, seq, cause), (Change(False, cause, seq),)
    # Already offline (e.g. timed out): we now know the connection is gone; "since when" stays.
    return PresenceState(False, seq, cause), ()


def on_heartbeat(state: PresenceState, seq: int) -> Outcome | None:
    """The state after a heartbeat of connection ``seq``; None when it comes from an older connection."""
    if seq < state.seq:
        return None
    if state.online:
        if seq > state.seq:  # a newer connection than the last status we saw: the old one dropped
            return PresenceState(True, seq, PresenceCause.HEARTBEAT.value), (
                Change(False, PresenceCause.RECONNECT.value, state.seq),
                Change(True, PresenceCause.HEARTBEAT.value, seq),
            )
        return state, ()
    if seq == state.seq and state.cause in _DEAD:
        return state, ()  # a late heartbeat of a connection whose will (or clean offline) we already have
    return PresenceState(True, seq, PresenceCause.HEARTBEAT.value), (Change(True, PresenceCause.HEARTBEAT.value, seq),)


def on_timeout(state: PresenceState) -> Outcome:
    """No heartbeat for the timeout: offline, whatever the retained status says."""
    if not state.online:
        return state, ()
    cause = PresenceCause.HEARTBEAT_TIMEOUT.value
    return PresenceState(False, state.seq, cause), (Change(False, cause, state.seq),)
