"""/api/v1/cap: CAP 1.2 alerts from a warning agency's system, aired on the clusters inside their area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.api.auth import client_ip, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.cap.alert import CapError
from broadcast_server.cap.feed_state import FeedHealth, configured_feed_views
from broadcast_server.cap.service import SpeechSettings, recent_alerts, store_cap
from broadcast_server.services.bulletins import BulletinError
from broadcast_server.services.dispatch import send_broadcast

router = APIRouter(prefix="/cap", tags=["cap"])
Receiver = Annotated[Principal, Depends(require(Action.EMERGENCY))]
CapDocument = Annotated[bytes, Body(media_type="application/cap+xml", description="One CAP 1.2 <alert>.")]


class CapOutcomeOut(BaseModel):
    alert_id: str
    action: str = Field(description="air (emergency broadcast now), review (submitted for approval), cancel, record")
    reason: str
    duplicate: bool = Field(description="The same sender and identifier came before: nothing was done again.")
    clusters: int = Field(description="Clusters inside its area (aired or to review), or told to stop (cancel).")
    bulletin_id: str | None
    broadcast_id: str | None


class CapAlertOut(BaseModel):
    id: str
    sender: str
    identifier: str
    sent: datetime
    status: str
    msg_type: str
    received_at: datetime
    action: str
    reason: str
    clusters: int
    bulletin_id: str | None
    broadcast_id: str | None


class CapFeedOut(BaseModel):
    url: str
    health: FeedHealth = Field(
        description="ok; entry_failed (read, but an entry could not be fetched or handled); unreadable; "
        "stale (not polled for three intervals and a minute: no leader, or the poller stopped); never_read"
    )
    last_polled_at: datetime | None
    last_read_at: datetime | None = Field(description="The last poll that read the feed itself.")
    entries: int = Field(description="Entries the last read listed.")
    alerts: int = Field(description="New alerts handled from this feed (repeats not counted).")
    last_alert_at: datetime | None
    last_error_kind: str | None = Field(
        description="feed_unreadable, alert_not_fetched (tried again), alert_refused, host_not_allowed"
    )
    last_error: str | None
    last_error_at: datetime | None


@router.post("", response_model=CapOutcomeOut)
def receive(
    document: CapDocument,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    principal: Receiver,
    request: Request,
) -> CapOutcomeOut:
    """Receive one alert (docs/cap.md): Actual alerts of severity Extreme or Severe and urgency Immediate or
    Expected air at once as emergencies on the caller's clusters inside the area; other Actual alerts become
    priority bulletins submitted for approval; a Cancel stops what the alerts it references started."""
    if runtime.bus is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "server is not connected to the MQTT broker")
    settings = runtime.settings
    speech = SpeechSettings.from_settings(settings)
    try:
        outcome = store_cap(
            runtime.engine, runtime.bus, principal, document, speech, now=runtime.clock.now(), ip=client_ip(request)
        )
    except CapError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a usable CAP 1.2 alert: {exc}") from None
    except BulletinError as exc:  # text to speech failed: nothing is stored, the agency's system may retry
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the alert could not be spoken: {exc}") from None
    if outcome.broadcast_id is not None and not outcome.duplicate:
        background.add_task(send_broadcast, runtime.engine, runtime.bus, outcome.broadcast_id, settings.public_url)
    return CapOutcomeOut(**vars(outcome))


@router.get("", response_model=list[CapAlertOut])
def listing(session: SessionDep, principal: Receiver) -> list[CapAlertOut]:
    """The alerts received, newest first (50)."""
    return [CapAlertOut.model_validate(row, from_attributes=True) for row in recent_alerts(session)]


@router.get("/feeds", response_model=list[CapFeedOut])
def feeds(session: SessionDep, runtime: RuntimeDep, principal: Receiver) -> list[CapFeedOut]:
    """The feeds this server reads (BCAST_CAP_FEEDS), in that order, with what their last reads gave."""
    views = configured_feed_views(session, runtime.settings, runtime.clock.now())
    return [CapFeedOut(**vars(view)) for view in views]
