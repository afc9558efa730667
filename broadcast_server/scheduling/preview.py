""" "What will cluster X play between A and B": the stored schedule through the agents' own planner."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from broadcast_server.scheduling.catalog import cluster_entries
from speaker_agent.playout import PlannedPlay, plan


def preview(
    session: Session, public_url: str, cluster_ids: list[str], start: datetime, end: datetime
) -> dict[str, list[PlannedPlay]]:
    """Each cluster's plays from start to end, as its agent will play them if nothing interrupts."""
    entries = cluster_entries(session, public_url, start, end)
    return {c: plan(entries.get(c, []), start=start, end=end) for c in cluster_ids}
