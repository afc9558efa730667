"""What the district does with a CAP alert (pure): air it now as an emergency, queue it for approval,
stop what an earlier alert started, or only record it. The rules are in docs/cap.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from broadcast_server.cap.alert import Alert

URGENT = frozenset({"Immediate", "Expected"})
SEVERE = frozenset({"Extreme", "Severe"})


class Action(StrEnum):
    AIR = "air"  # an emergency broadcast to the clusters in the area, at once
    REVIEW = "review"  # a priority bulletin submitted for approval (district staff decide)
    CANCEL = "cancel"  # stop the broadcasts of the alerts it references
    RECORD = "record"  # kept and shown, nothing aired


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # in English, for the API, the audit log and the logs
    replaces: bool = False  # an Update: the referenced alerts' broadcasts stop before this one airs


def decide(alert: Alert, now: datetime) -> Decision:
    if alert.status != "Actual":
        return Decision(Action.RECORD, f"status {alert.status}: only Actual alerts go on air")
    if alert.msg_type == "Cancel":
        return Decision(Action.CANCEL, "cancels the alerts it references")
    if alert.msg_type not in ("Alert", "Update"):
        return Decision(Action.RECORD, f"msgType {alert.msg_type}: nothing to air")
    info = alert.info_for("vi")
    if info is None or not info.text:
        return Decision(Action.RECORD, "no info block with a headline, description or instruction to speak")
    if info.expires is not None and info.expires <= now:
        return Decision(Action.RECORD, f"expired at {info.expires.isoformat()}")
    if not any(area.polygons or area.circles for area in info.areas):
        return Decision(Action.RECORD, "no polygon or circle in its areas (geocodes are not read): no clusters known")
    replaces = alert.msg_type == "Update"
    if info.urgency in URGENT and info.severity in SEVERE:
        return Decision(Action.AIR, f"urgency {info.urgency}, severity {info.severity}: aired at once", replaces)
    return Decision(
        Action.REVIEW, f"urgency {info.urgency}, severity {info.severity}: submitted for approval", replaces
    )
