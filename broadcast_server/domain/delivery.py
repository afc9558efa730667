"""Life of one command to one cluster: which agent outcome moves a delivery to which state."""

from __future__ import annotations

QUEUED = "queued"
SENT = "sent"
TERMINAL = frozenset({"played", "failed", "missed", "rejected", "stopped"})
STATES = (QUEUED, SENT, *sorted(TERMINAL))


def next_state(current: str, report_status: str) -> str | None:
    """The delivery state after an agent's report, or None if the report changes nothing.

    The agent sends one outcome per command; a repeated or late report never overwrites an outcome.
    """
    if report_status not in TERMINAL or current in TERMINAL:
        return None
    return report_status
