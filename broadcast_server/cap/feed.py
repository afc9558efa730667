"""Pull CAP alerts from warning agencies' feeds (Atom or RSS 2.0 listing links to CAP documents).

On the leader, every `BCAST_CAP_FEED_INTERVAL_S`, each feed of `BCAST_CAP_FEEDS` is read; every entry not
seen before is fetched and handled as if posted to the API by the system itself (its area: the whole
fleet). An alert read again (the next poll, a restart) is answered as a duplicate and aired once. Entry
links are followed only to the feed's own host or to `BCAST_CAP_RESOURCE_HOSTS`. What each poll gave is
recorded for the console (cap/feed_state.py).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import httpx
from sqlalchemy import Engine

from broadcast_server.cap.alert import MAX_BYTES, CapError
from broadcast_server.cap.bounded_get import FetchFailed, get_bounded
from broadcast_server.cap.feed_state import FeedLog, FeedProblem
from broadcast_server.cap.service import CapOutcome, SpeechSettings, store_cap
from broadcast_server.cap.untrusted_xml import parse_untrusted
from broadcast_server.services.bulletins import BulletinError
from broadcast_server.services.dispatch import CommandPublisher, send_broadcast

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPES = ("application/cap+xml", "application/common-alerting-protocol+xml")
MAX_FEED_BYTES = 2 * 1024 * 1024
REMEMBERED_LINKS = 2_000  # entry links already handled, so each poll fetches only what is new


class FeedError(ValueError):
    """The feed cannot be read or is neither Atom nor RSS 2.0; the message says why."""


def entry_links(data: bytes, base_url: str) -> list[str]:
    """The CAP document of each entry, oldest first, as absolute URLs (pure).

    Atom: the entry's link of a CAP media type, else its `alternate` link; RSS 2.0: each item's link."""
    root = parse_untrusted(data, max_bytes=MAX_FEED_BYTES, error=FeedError, what="feed")
    links: list[str] = []
    if root.tag == f"{ATOM}feed":
        for entry in root.findall(f"{ATOM}entry"):
            found = entry.findall(f"{ATOM}link")
            chosen = next((link for link in found if link.get("type") in CAP_TYPES), None)
            if chosen is None:  # (not `or`: an element without children is false)
                chosen = next((link for link in found if link.get("rel", "alternate") == "alternate"), None)
            if chosen is not None and chosen.get("href"):
                links.append(chosen.get("href", ""))
    elif root.tag == "rss":
        links = [(item.findtext("link") or "").strip() for item in root.iterfind("channel/item")]
    else:
        raise FeedError(f"root element is {root.tag!r}: neither an Atom <feed> nor an RSS 2.0 <rss>")
    # Feeds list the newest first: handle the oldest first, so that an update comes after its alert.
    return [urljoin(base_url, link) for link in reversed(links) if link]


@dataclass(frozen=True)
class FeedSource:
    """The feeds to read, the hosts their entries may link to besides their own, and the limits."""

    urls: tuple[str, ...]
    other_hosts: frozenset[str] = frozenset()
    timeout_s: float = 10.0


class FeedReader:
    """Reads the feeds once (`poll`) and handles each new entry; remembers the entries it has handled."""

    def __init__(
        self,
        engine: Engine,
        publisher: CommandPublisher,
        source: FeedSource,
        speech: SpeechSettings,
        public_url: str,
        now: Callable[[], datetime],
    ) -> None:
        self.engine, self.publisher, self.source, self.speech = engine, publisher, source, speech
        self.public_url, self.now = public_url, now
        self.log = FeedLog(engine)
        self._handled: OrderedDict[str, None] = OrderedDict()

    def poll(self) -> list[CapOutcome]:
        """Read every feed; handle the entries not handled before. A failing feed or entry is logged and
        tried again on the next poll; the others go on."""
        outcomes: list[CapOutcome] = []
        with httpx.Client(timeout=self.source.timeout_s, follow_redirects=False) as client:
            for feed_url in self.source.urls:
                self.log.polled(feed_url, self.now())
                try:
                    links = entry_links(get_bounded(client, feed_url, MAX_FEED_BYTES), feed_url)
                except (FeedError, FetchFailed) as exc:
                    log.error("CAP feed %s not read: %s", feed_url, exc)
                    self.log.failed(feed_url, self.now(), FeedProblem.FEED_UNREADABLE, str(exc))
                    continue
                self.log.read(feed_url, self.now(), len(links))
                allowed = {(urlsplit(feed_url).hostname or "").lower(), *self.source.other_hosts}
                for link in links:
                    if link in self._handled:
                        continue
                    outcome = self._entry(client, feed_url, link, allowed)
                    if outcome is not None:
                        outcomes.append(outcome)
        return outcomes

    def _entry(self, client: httpx.Client, feed_url: str, link: str, allowed: set[str]) -> CapOutcome | None:
        host = (urlsplit(link).hostname or "").lower()
        if urlsplit(link).scheme not in ("http", "https") or host not in allowed:
            log.error("CAP feed entry %s not fetched: host %r is neither the feed's nor allowed", link, host)
            self.log.failed(feed_url, self.now(), FeedProblem.HOST_NOT_ALLOWED, link)
            self._remember(link)  # it will not change its host: never tried again
            return None
        try:
            document = get_bounded(client, link, MAX_BYTES)
            outcome = store_cap(self.engine, self.publisher, None, document, self.speech, now=self.now())
        except (FetchFailed, BulletinError) as exc:
            log.error("CAP alert %s not handled, tried again on the next poll: %s", link, exc)
            self.log.failed(feed_url, self.now(), FeedProblem.ALERT_NOT_FETCHED, f"{link}: {exc}")
            return None
        except CapError as exc:
            log.error("CAP alert %s refused: %s", link, exc)
            self.log.failed(feed_url, self.now(), FeedProblem.ALERT_REFUSED, f"{link}: {exc}")
            self._remember(link)
            return None
        self._remember(link)
        if outcome.broadcast_id is not None and not outcome.duplicate:
            send_broadcast(self.engine, self.publisher, outcome.broadcast_id, self.public_url)
        if not outcome.duplicate:
            log.info("CAP alert %s: %s (%s)", link, outcome.action, outcome.reason)
            self.log.alert_handled(feed_url, self.now())
        return outcome

    def _remember(self, link: str) -> None:
        self._handled[link] = None
        while len(self._handled) > REMEMBERED_LINKS:
            self._handled.popitem(last=False)


class FeedPoller:
    """On the leader, every `every_s`: `reader.poll()` in a thread of its own."""

    def __init__(self, reader: FeedReader, is_leader: Callable[[], bool], *, every_s: float) -> None:
        self.reader, self.is_leader, self.every_s = reader, is_leader, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcast-cap-feeds", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.is_leader():
                try:
                    self.reader.poll()
                except Exception:  # a bug must not end the polling of every later alert
                    log.exception("CAP feed poll failed")
            self._stop.wait(self.every_s)
