"""What each CAP feed's reads gave, kept in the database so that any replica's console can show it.

A feed that fails silently means a storm warning that is never aired: the leader records every poll
(`FeedLog`), and `feed_health` (pure) says whether a feed is read, failing or no longer read at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from broadcast_server.db.session import session_scope
from broadcast_server.models import ERROR_LENGTH, CapFeedState

if TYPE_CHECKING:
    from broadcast_server.settings import Settings

log = logging.getLogger(__name__)

STALE_AFTER_POLLS = 3  # a feed not polled for this many intervals (and a minute) is no longer being read
STALE_SLACK = timedelta(minutes=1)  # a poll's own fetches may take that long


class FeedHealth(StrEnum):
    NEVER_READ = "never_read"  # configured, not polled yet (the server has just started, or leads nowhere)
    OK = "ok"  # the last poll read the feed and handled every new entry
    ENTRY_FAILED = "entry_failed"  # the last poll read the feed, but an entry could not be fetched or handled
    UNREADABLE = "unreadable"  # the last poll could not read the feed itself
    STALE = "stale"  # not polled for several intervals: no leader, or the poller stopped


class FeedProblem(StrEnum):
    """What went wrong in a poll; the detail (in English, as in the log) says precisely why."""

    FEED_UNREADABLE = "feed_unreadable"  # the feed could not be fetched, or is not Atom or RSS 2.0
    ALERT_NOT_FETCHED = "alert_not_fetched"  # an entry's alert could not be fetched or spoken: tried again
    ALERT_REFUSED = "alert_refused"  # an entry is not a usable CAP alert: not tried again
    HOST_NOT_ALLOWED = "host_not_allowed"  # an entry links to a host that is neither the feed's nor allowed


@dataclass(frozen=True)
class FeedView:
    """One configured feed as the console and the API show it."""

    url: str
    health: FeedHealth
    last_polled_at: datetime | None
    last_read_at: datetime | None
    entries: int
    alerts: int
    last_alert_at: datetime | None
    last_error_kind: str | None
    last_error: str | None
    last_error_at: datetime | None


def feed_health(state: CapFeedState | None, now: datetime, interval_s: float) -> FeedHealth:
    """Classify a feed by its last poll (pure): never polled, stale, unreadable, an entry failed, or fine."""
    if state is None or state.last_polled_at is None:
        return FeedHealth.NEVER_READ
    if now - state.last_polled_at > timedelta(seconds=STALE_AFTER_POLLS * interval_s) + STALE_SLACK:
        return FeedHealth.STALE
    if state.problem is None:
        return FeedHealth.OK
    return FeedHealth.UNREADABLE if state.problem == FeedProblem.FEED_UNREADABLE else FeedHealth.ENTRY_FAILED


def feed_views(session: Session, urls: Iterable[str], now: datetime, interval_s: float) -> list[FeedView]:
    """The configured feeds in their configured order, each with its recorded state and health."""
    urls = list(urls)
    if not urls:
        return []
    states = {s.url: s for s in session.exec(select(CapFeedState).where(col(CapFeedState.url).in_(urls)))}
    return [
        FeedView(
            health=feed_health(states.get(url), now, interval_s),
            **(states.get(url) or CapFeedState(url=url)).model_dump(exclude={"problem"}),
        )
        for url in urls
    ]


def configured_feed_views(session: Session, settings: Settings, now: datetime) -> list[FeedView]:
    """The feeds the server is configured to read (`BCAST_CAP_FEEDS`), for the console and the API."""
    return feed_views(session, settings.cap_feed_urls, now, settings.cap_feed_interval_s)


class FeedLog:
    """Records a poll's events in ``cap_feed_state``; a database that is away is logged, never raised:
    the alerts themselves matter more than the record of reading them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def polled(self, url: str, at: datetime) -> None:
        """A poll of the feed begins: the problem of the poll before is no longer current."""
        self._update(url, last_polled_at=at, problem=None)

    def read(self, url: str, at: datetime, entries: int) -> None:
        self._update(url, last_read_at=at, entries=entries)

    def failed(self, url: str, at: datetime, problem: FeedProblem, detail: str) -> None:
        kind = problem.value
        self._update(url, problem=kind, last_error_kind=kind, last_error=detail[:ERROR_LENGTH], last_error_at=at)

    def alert_handled(self, url: str, at: datetime) -> None:
        self._update(url, last_alert_at=at, add_alert=True)

    def _update(self, url: str, *, add_alert: bool = False, **values: object) -> None:
        try:
            with session_scope(self.engine) as session:
                state = session.get(CapFeedState, url) or CapFeedState(url=url)
                for name, value in values.items():
                    setattr(state, name, value)
                if add_alert:
                    state.alerts += 1
                session.add(state)
        except SQLAlchemyError as exc:
            log.error("CAP feed %s: its state not recorded: %s", url, exc)
