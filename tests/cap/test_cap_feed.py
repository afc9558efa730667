"""CAP feeds pulled by the leader: the entries' links read from Atom and RSS (pure), then a feed on a
loopback server read twice and by a restarted reader (each alert aired once), on SQLite and PostgreSQL;
what each poll gave is recorded for the console (feed_state), and a feed's health follows from it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from broadcast_server.cap.feed import FeedError, FeedPoller, FeedReader, FeedSource, entry_links
from broadcast_server.cap.feed_state import FeedHealth, FeedLog, FeedProblem, feed_health, feed_views
from broadcast_server.cap.service import SpeechSettings
from broadcast_server.db.engine import make_engine
from broadcast_server.db.session import session_scope
from broadcast_server.domain.fleet import parse_fleet_csv
from broadcast_server.models import Broadcast, CapAlert, CapFeedState
from broadcast_server.services.fleet_import import import_fleet
from tests.cap.samples import alert, serving
from tests.cap.test_cap_service import FLEET, NOW
from tests.server.test_dispatch_and_ingest import RecordingPublisher

SENDER = "canhbao@phongchongthientai.gov.vn"


def atom(*entries: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Cảnh báo thiên tai</title><id>urn:feed:vndma</id><updated>2026-10-29T07:00:00Z</updated>
  {"".join(entries)}
</feed>""".encode()


def entry(*links: str) -> str:
    return f"<entry><id>urn:e:{abs(hash(links))}</id><title>Cảnh báo</title>{''.join(links)}</entry>"


def test_links_are_read_from_atom_and_rss_oldest_first() -> None:
    document = atom(
        entry('<link type="text/html" href="/3.html"/>', '<link type="application/cap+xml" href="/cap/3.xml"/>'),
        entry('<link href="https://tin.example/cap/2.xml"/>'),
        entry('<link rel="self" href="/feed"/>'),  # no alternate or CAP link: nothing to read
    )  # fmt: skip
    assert entry_links(document, "http://canhbao.example/feed") == [
        "https://tin.example/cap/2.xml",
        "http://canhbao.example/cap/3.xml",
    ]
    rss = b"""<rss version="2.0"><channel><title>x</title>
      <item><title>b</title><link>http://canhbao.example/2.xml</link></item>
      <item><title>a</title><link>1.xml</link></item></channel></rss>"""
    assert entry_links(rss, "http://canhbao.example/rss/") == [
        "http://canhbao.example/rss/1.xml",
        "http://canhbao.example/2.xml",
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("<html><body>trang chủ</body></html>".encode(), "neither an Atom <feed> nor an RSS 2.0 <rss>"),
        (b"<feed", "not well-formed XML"),
        (b'<!DOCTYPE feed [<!ENTITY x "y">]><feed xmlns="http://www.w3.org/2005/Atom">&x;</feed>', "refused XML"),
        (b" " * (3 * 1024 * 1024), "exceeds"),
    ],
    ids=["html", "broken", "entities", "huge"],
)
def test_what_is_not_a_feed_is_refused(document: bytes, problem: str) -> None:
    with pytest.raises(FeedError) as caught:
        entry_links(document, "http://canhbao.example/feed")
    assert problem in str(caught.value)


@pytest.fixture
def fleet(engine, tmp_path):
    import_fleet(engine, parse_fleet_csv(FLEET))
    return engine, SpeechSettings(tmp_path / "audio", "vi", -16.0, 300)


def test_a_feed_is_read_each_alert_handled_once_and_foreign_links_never_followed(fleet) -> None:
    engine, speech = fleet
    files = {
        "/cap/storm.xml": alert("F-1"),
        "/cap/moderate.xml": alert("F-2", severity="Moderate"),
    }
    with serving(files) as (base, requests):
        files["/feed"] = atom(  # newest first, as feeds list them
            entry('<link href="/cap/missing.xml"/>'),  # not there yet: tried again on the next poll
            entry('<link href="http://10.0.0.5/cap/internal.xml"/>'),  # not the feed's host: never fetched
            entry(f'<link href="{base}/cap/storm.xml"/>'),
            entry('<link href="/cap/moderate.xml"/>'),
        )
        publisher = RecordingPublisher()
        feed = FeedSource((f"{base}/feed",))
        reader = FeedReader(engine, publisher, feed, speech, "http://127.0.0.1:9", lambda: NOW)
        first = reader.poll()
        assert [(o.action, o.duplicate) for o in first] == [("review", False), ("air", False)]
        assert sorted(c for c, _ in publisher.sent) == ["bh-1", "bh-2"]  # the storm went out at once
        assert requests == ["/feed", "/cap/moderate.xml", "/cap/storm.xml", "/cap/missing.xml"]
        with session_scope(engine) as session:
            [view] = feed_views(session, [f"{base}/feed"], NOW, 60)
        assert (view.health, view.entries, view.alerts, view.last_read_at) == (FeedHealth.ENTRY_FAILED, 4, 2, NOW)
        assert view.last_error_kind == FeedProblem.ALERT_NOT_FETCHED  # the last problem: missing.xml, a 404
        assert view.last_error.startswith(f"{base}/cap/missing.xml: ") and "404" in view.last_error

        cancel = alert("F-3", msg_type="Cancel", references=f"{SENDER},F-1,{NOW.isoformat()}")
        files["/cap/missing.xml"] = cancel
        second = reader.poll()  # only what was not handled: the cancel, which stops the storm
        assert [(o.action, o.clusters) for o in second] == [("cancel", 2)]
        assert requests[4:] == ["/feed", "/cap/missing.xml"]
        assert [c["type"] for _, c in publisher.sent[2:]] == ["stop", "stop"]
        with session_scope(engine) as session:
            [view] = feed_views(session, [f"{base}/feed"], NOW, 60)
        assert (view.health, view.alerts) == (FeedHealth.OK, 3)  # the error of the poll before stays shown
        assert view.last_error_kind == FeedProblem.ALERT_NOT_FETCHED

        restarted = FeedReader(engine, publisher, feed, speech, "http://127.0.0.1:9", lambda: NOW)
        again = restarted.poll()  # a restarted server reads every entry again: each one a duplicate
        assert [o.duplicate for o in again] == [True, True, True]
        assert len(publisher.sent) == 4  # nothing aired or stopped twice
        with session_scope(engine) as session:
            assert session.get(CapFeedState, f"{base}/feed").alerts == 3  # repeats are not counted
    with session_scope(engine) as session:
        assert len(session.exec(select(Broadcast)).all()) == 1
        assert sorted(session.exec(select(CapAlert.identifier)).all()) == ["F-1", "F-2", "F-3"]


def test_a_feed_that_fails_is_logged_and_the_others_still_read(fleet, caplog) -> None:
    engine, speech = fleet
    files = {
        "/cap/storm.xml": alert("G-1"),
        "/cap/not-cap.xml": b"<alert/>",
        "/feed": atom(entry('<link href="/cap/storm.xml"/>'), entry('<link href="/cap/not-cap.xml"/>')),
    }
    with serving(files) as (base, requests):
        feeds = FeedSource((f"{base}/khong-co", f"{base}/feed"))
        reader = FeedReader(engine, RecordingPublisher(), feeds, speech, "http://127.0.0.1:9", lambda: NOW)
        assert [o.action for o in reader.poll()] == ["air"]
        with session_scope(engine) as session:
            missing, feed = feed_views(session, feeds.urls, NOW, 60)
        assert (missing.health, missing.last_error_kind, missing.last_read_at) == (
            FeedHealth.UNREADABLE,
            FeedProblem.FEED_UNREADABLE,
            None,
        )
        assert "answered HTTP 404" in missing.last_error
        assert (feed.health, feed.last_error_kind) == (FeedHealth.ENTRY_FAILED, FeedProblem.ALERT_REFUSED)
        assert reader.poll() == []  # a document that is not CAP is not fetched again
        with session_scope(engine) as session:
            missing, feed = feed_views(session, feeds.urls, NOW, 60)
        assert (missing.health, feed.health) == (FeedHealth.UNREADABLE, FeedHealth.OK)
        with session_scope(engine) as session:  # ten minutes later nobody has polled: the leader is gone
            later = feed_views(session, feeds.urls, NOW + timedelta(minutes=10), 60)
        assert [v.health for v in later] == [FeedHealth.STALE, FeedHealth.STALE]
    assert "answered HTTP 404" in caplog.text and "refused: root element" in caplog.text
    assert requests.count("/cap/not-cap.xml") == 1 and requests.count("/khong-co") == 2


def _state(polled: int | None, problem: FeedProblem | None = None) -> CapFeedState:
    """A feed's state polled `polled` minutes after NOW (None: never), with the problem of that poll."""
    at = None if polled is None else NOW + timedelta(minutes=polled)
    return CapFeedState(url="http://x/feed", last_polled_at=at, problem=problem)


@pytest.mark.parametrize(
    ("state", "minutes_later", "health"),
    [
        (None, 0, FeedHealth.NEVER_READ),
        (_state(None), 0, FeedHealth.NEVER_READ),
        (_state(0), 1, FeedHealth.OK),
        (_state(0, FeedProblem.ALERT_NOT_FETCHED), 1, FeedHealth.ENTRY_FAILED),
        (_state(0, FeedProblem.ALERT_REFUSED), 1, FeedHealth.ENTRY_FAILED),
        (_state(0, FeedProblem.HOST_NOT_ALLOWED), 1, FeedHealth.ENTRY_FAILED),
        (_state(0, FeedProblem.FEED_UNREADABLE), 1, FeedHealth.UNREADABLE),
        (_state(0), 4, FeedHealth.OK),  # three intervals of 60 s and a minute: still within
        (_state(0), 5, FeedHealth.STALE),
        (_state(0, FeedProblem.FEED_UNREADABLE), 5, FeedHealth.STALE),
    ],
)
def test_a_feeds_health_follows_from_its_last_poll(state, minutes_later, health) -> None:
    assert feed_health(state, NOW + timedelta(minutes=minutes_later), 60) is health


def test_a_database_away_does_not_stop_the_reads(tmp_path, caplog) -> None:
    """Recording a poll against a database that cannot be written is logged; the poller goes on."""
    away = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'bcast.sqlite3'}")
    with caplog.at_level(logging.ERROR):
        FeedLog(away).failed("http://x/feed", NOW, FeedProblem.FEED_UNREADABLE, "timed out")
    assert "CAP feed http://x/feed: its state not recorded" in caplog.text


def test_the_poller_reads_only_while_it_leads() -> None:
    polls: list[datetime] = []
    polled = threading.Event()

    class Reader:
        def poll(self) -> list:
            polls.append(datetime.now(UTC))
            polled.set()
            return []

    leading = threading.Event()
    poller = FeedPoller(Reader(), leading.is_set, every_s=0.05)  # type: ignore[arg-type]
    poller.start()
    try:
        assert not polled.wait(0.3) and polls == []
        leading.set()
        assert polled.wait(5)
    finally:
        poller.stop()


@pytest.mark.broker
def test_a_started_server_pulls_the_feeds_it_is_given(fleet, database_url, tmp_path) -> None:
    """`bcast server`'s Runtime with BCAST_CAP_FEEDS: the leader reads the feed and airs the storm."""
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    engine, _ = fleet
    files = {"/cap/storm.xml": alert("R-1")}
    with serving(files) as (base, requests):
        files["/feed"] = atom(entry('<link href="/cap/storm.xml"/>'))
        settings = get_settings(
            database_url=database_url,
            audio_dir=tmp_path / "audio",
            mqtt_client_id=f"bcast-feed-{uuid.uuid4().hex[:8]}",
            topic_root=f"t{uuid.uuid4().hex[:8]}",
            cap_feeds=f"{base}/feed",
            cap_feed_interval_s=5,
        )
        runtime = Runtime.from_settings(settings)
        runtime.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with session_scope(engine) as session:
                    stored = session.exec(select(CapAlert)).all()
                if stored:
                    break
                time.sleep(0.1)
        finally:
            runtime.stop()
            runtime.engine.dispose()
    assert [(a.identifier, a.action) for a in stored] == [("R-1", "air")]
    assert requests[:2] == ["/feed", "/cap/storm.xml"]


def test_the_api_lists_each_configured_feed_with_its_health(client, world, runtime, monkeypatch) -> None:
    feeds = ("http://canhbao.example/feed", "https://khac.example/rss")
    monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={"cap_feeds": ", ".join(feeds)}))
    now = runtime.clock.now()
    log = FeedLog(world.engine)
    log.polled(feeds[0], now)
    log.failed(feeds[0], now, FeedProblem.FEED_UNREADABLE, f"{feeds[0]} answered HTTP 503")
    log.polled("http://no-longer.example/feed", now)  # not configured any more: not listed
    answer = client.get("/api/v1/cap/feeds", headers=world.headers("duyet-huyen"))
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert [(f["url"], f["health"], f["last_error_kind"]) for f in listed] == [
        (feeds[0], "unreadable", "feed_unreadable"),
        (feeds[1], "never_read", None),
    ]
    assert listed[0]["last_error"] == f"{feeds[0]} answered HTTP 503" and listed[0]["last_read_at"] is None
    assert client.get("/api/v1/cap/feeds", headers=world.headers("kythuat-bt")).status_code == 403


@pytest.mark.parametrize("feeds", ["canhbao.example/feed", "ftp://canhbao.example/feed", "http:///feed"])
def test_a_feed_setting_that_is_not_web_addresses_is_refused(feeds: str) -> None:
    from pydantic import ValidationError

    from broadcast_server.settings import get_settings

    with pytest.raises(ValidationError) as caught:
        get_settings(cap_feeds=f"http://ok.example/feed, {feeds}")
    assert f"{feeds!r} is not an http(s) URL of at most 2000 characters" in str(caught.value)
    good = get_settings(cap_feeds="http://a.example/feed,https://b.example/rss  http://c.example/")
    assert good.cap_feed_urls == ("http://a.example/feed", "https://b.example/rss", "http://c.example/")
