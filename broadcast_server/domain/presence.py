"""Online/offline from retained status messages, with the Sparkplug-style connect counter (bdSeq)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Presence:
    online: bool
    seq: int


def apply_status(current: Presence | None, state: str, seq: int) -> Presence | None:
    """The new presence after a status message, or None when the message must be ignored.

    Every 'online' is the live connection and wins. An 'offline' counts only if its seq is not below the
    last connect's: a last will from an older connection that the broker delivers late is stale.
    """
    if state == "online":
        return Presence(True, seq)
    if current is not None and seq < current.seq:
        return None
    return Presence(False, seq)
