"""What a cluster plays when: one pure planner shared by the agent (to play) and the server (to preview).

Because both sides call the same `plan()` on the same entries, a preview and the playback it predicts
cannot disagree except where the world intervenes (an emergency, a power cut, a missing file).
"""

from speaker_agent.playout.plan import (
    AudioRef,
    Conflict,
    Entry,
    Item,
    PlannedPlay,
    StreamRef,
    find_conflicts,
    order_items,
    plan,
)

__all__ = [
    "AudioRef",
    "Conflict",
    "Entry",
    "Item",
    "PlannedPlay",
    "StreamRef",
    "find_conflicts",
    "order_items",
    "plan",
]
