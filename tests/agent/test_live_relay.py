"""Live relay (tiếp sóng): a `play` with `play.stream` relays a live stream over its window.

The agent tests run the real agent on the machine's Mosquitto with a simulated player; agent and player
share an accelerated clock (SPEED times real time) so a minute of relay takes three seconds and the
window, the drops and the backoff are all measured in the same time. The last tests run the real ffplay
against a stream served from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from speaker_agent import Agent
from speaker_agent.clock import AcceleratedClock, SystemClock, isoformat, parse_time
from speaker_agent.player import CommandPlayer, PlayOutcome, SimulatedPlayer, StreamError

from .broker_observer import Observer, wait_for
from .conftest import unsigned_config

SPEED = 20.0  # virtual seconds per real second, for agent and player alike
VOV1 = "http://stream.example.vn/vov1.mp3"

broker = pytest.mark.broker


@dataclass
class CountingPlayer(SimulatedPlayer):
    """The simulated player, noting when (on its clock) each connection to a stream was attempted."""

    attempts: list[datetime] = field(default_factory=list)

    async def play_stream(self, url: str, duration_s: float, *, label: str | None = None) -> PlayOutcome:
        self.attempts.append(self.clock.now())
        return await super().play_stream(url, duration_s, label=label)


@dataclass
class Box:
    agent: Agent
    player: CountingPlayer
    observer: Observer
    clock: AcceleratedClock
    http: httpx.AsyncClient

    def send(self, command: dict) -> None:
        self.observer.send(self.agent.cluster_id, command)

    def command(self, kind: str, *, issued_ago_s: float = 0.0, expires_in_s: float = 120.0, **fields) -> dict:
        """A command stamped on the shared (virtual) clock."""
        now = self.clock.now()
        return {
            "v": 1,
            "id": uuid.uuid4().hex,
            "type": kind,
            "issued_at": isoformat(now - timedelta(seconds=issued_ago_s)),
            "expires_at": isoformat(now + timedelta(seconds=expires_in_s)),
            **fields,
        }

    def relay(self, broadcast_id: str, duration_s: int, *, url: str = VOV1, priority: str = "normal", **options):
        play = {"broadcast_id": broadcast_id, "priority": priority, "stream": {"url": url, "duration_s": duration_s}}
        timing = {k: options.pop(k) for k in ("issued_ago_s", "expires_in_s") if k in options}
        return self.command("play", play={**play, **options}, **timing)


@pytest.fixture
async def box(tmp_path, topic_root) -> AsyncIterator[Box]:
    observer = Observer(topic_root)
    clock = AcceleratedClock(datetime.now(UTC), SPEED)
    cluster_id = f"c-relay-{uuid.uuid4().hex[:8]}"  # MQTT client ids are the broker's, whatever the topic root
    player = CountingPlayer(clock=clock, cluster_id=cluster_id)
    config = unsigned_config(cluster_id=cluster_id, data_dir=tmp_path / "box", topic_root=topic_root)
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        yield Box(agent, player, observer, clock, http)
        await agent.stop()
    observer.close()


@broker
async def test_a_relay_plays_for_its_duration_at_its_forced_level(box):
    relay = box.relay("b-vov1", 40, volume=100)
    box.send(relay)
    await wait_for(lambda: box.agent.playing == "b-vov1", what="relay on air")
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    report = box.observer.report_for(relay["id"])
    assert report["status"] == "played" and report["broadcast_id"] == "b-vov1"
    assert report["late_s"] < 5.0 and abs(report["played_s"] + report["late_s"] - 40.0) < 0.5  # the whole window
    assert "reason" not in report  # no drop, nothing to say
    assert [(p.file, p.sha256, p.completed, p.volume) for p in box.player.log] == [(VOV1, "", True, 100)]
    assert box.player.volume == box.agent.volume != 100  # the cluster's own level is back
    assert box.agent.state.is_done(relay["id"]) and box.agent.playing is None


@broker
async def test_a_cluster_that_gets_the_relay_late_joins_for_what_is_left(box):
    relay = box.relay("b-late", 60, issued_ago_s=30)  # e.g. it reconnected after a storm
    box.send(relay)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    report = box.observer.report_for(relay["id"])
    assert report["status"] == "played"
    assert 30.0 <= report["late_s"] <= 35.0
    assert abs(report["played_s"] + report["late_s"] - 60.0) < 0.5  # what was left of the window
    window_end = parse_time(relay["issued_at"]) + timedelta(seconds=60)
    assert abs((parse_time(report["ended_at"]) - window_end).total_seconds()) < 1.0


@broker
async def test_a_drop_mid_relay_reconnects_and_the_gap_is_not_counted(box):
    box.player.stream_drops = {VOV1: 15.0}
    relay = box.relay("b-drop", 60)
    box.send(relay)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    report = box.observer.report_for(relay["id"])
    assert report["status"] == "played"
    # 15 s, a drop, a 1 s wait, then the rest of the window: the gap is not in played_s.
    assert 55.0 <= report["played_s"] + report["late_s"] <= 59.01
    assert report["reason"].startswith(f"stream dropped 1 time; relayed {report['played_s']:.0f} of 60 s; last: ")
    assert "dropped after 15.0 s" in report["reason"]
    gap = (box.player.attempts[1] - box.player.attempts[0]).total_seconds()
    assert 16.0 <= gap <= 17.5
    assert [(round(p.played_s), p.completed) for p in box.player.log][0] == (15, False)
    assert box.player.log[1].completed and not box.player.stream_drops


@broker
async def test_an_unreachable_stream_is_retried_with_backoff_then_fails(box):
    box.player.stream_down = {VOV1}
    relay = box.relay("b-down", 20)
    box.send(relay)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    report = box.observer.report_for(relay["id"])
    assert report["status"] == "failed"
    assert report["reason"] == f"stream unreachable: could not open the stream {VOV1}: connection refused (simulated)"
    assert "played_s" not in report and box.player.log == []
    # Attempts 1, 2, 4, 8 s apart; then a 16 s wait would leave under a second of the window: it stops.
    starts = box.player.attempts
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 5 and all(0 <= g - want < 1.0 for g, want in zip(gaps, [1, 2, 4, 8], strict=True))
    assert box.agent.last_error.startswith("stream unreachable")


@broker
async def test_a_relay_whose_window_is_over_is_missed(box):
    relay = box.relay("b-over", 60, issued_ago_s=120, expires_in_s=60)
    box.send(relay)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    window_end = parse_time(relay["issued_at"]) + timedelta(seconds=60)
    report = box.observer.report_for(relay["id"])
    assert (report["status"], report["reason"]) == ("missed", f"relay window ended at {isoformat(window_end)}")
    assert box.player.attempts == []


@broker
async def test_an_emergency_file_cuts_a_normal_relay(box, audio_server):
    url, sha, size = audio_server.add("flood.mp3", b"A" * 1000)
    relay = box.relay("b-vov1", 600)
    box.send(relay)
    await wait_for(lambda: box.agent.playing == "b-vov1", what="relay on air")
    await asyncio.sleep(0.25)
    audio = {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 2}
    flood = box.command("play", play={"broadcast_id": "b-flood", "priority": "emergency", "audio": audio})
    box.send(flood)
    await wait_for(lambda: box.observer.report_for(relay["id"]) and box.observer.report_for(flood["id"]), what="both")
    cut = box.observer.report_for(relay["id"])
    assert (cut["status"], cut["reason"]) == ("stopped", "interrupted")
    assert 0 < cut["played_s"] < 600 and cut["started_at"] and cut["late_s"] < 5.0
    assert box.observer.report_for(flood["id"])["status"] == "played"
    assert [(p.broadcast_id, p.completed) for p in box.player.log] == [("b-vov1", False), ("b-flood", True)]


@broker
async def test_a_stop_of_the_broadcast_cuts_the_relay(box):
    relay = box.relay("b-commune", 600)
    box.send(relay)
    await wait_for(lambda: box.agent.playing == "b-commune", what="relay on air")
    stop = box.command("stop", stop={"broadcast_id": "b-commune"})
    box.send(stop)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
    cut = box.observer.report_for(relay["id"])
    assert (cut["status"], cut["reason"]) == ("stopped", "interrupted") and 0 < cut["played_s"] < 600
    assert box.agent.state.is_done(relay["id"]) and box.agent.playing is None


@broker
@pytest.mark.parametrize("member", ["both", "neither"])
async def test_a_play_needs_exactly_one_of_audio_and_stream(box, member):
    relay = box.relay("b-bad", 60)
    if member == "both":
        relay["play"]["audio"] = {"url": "http://x.vn/a.mp3", "sha256": "a" * 64, "size_bytes": 10, "duration_s": 1}
    else:
        del relay["play"]["stream"]
    box.send(relay)
    await wait_for(lambda: box.observer.report_for(relay["id"]), what="rejection")
    report = box.observer.report_for(relay["id"])
    assert report["status"] == "rejected" and report["reason"].startswith("malformed command")
    assert box.player.attempts == [] and not box.agent.state.pending


@broker
async def test_after_a_power_cut_a_relay_resumes_for_what_is_left_of_its_window(box):
    relay = box.relay("b-power", 60)
    box.send(relay)
    await wait_for(lambda: box.agent.playing == "b-power", what="relay on air")
    await asyncio.sleep(10 / SPEED)
    await box.agent.kill()  # power cut: memory lost, the command still pending on disk
    await asyncio.sleep(5 / SPEED)
    again = Agent(box.agent.config, http=box.http, player=box.player, clock=box.clock)
    await again.start()
    try:
        await wait_for(lambda: box.observer.report_for(relay["id"]), what="relay report")
        report = box.observer.report_for(relay["id"])
        assert report["status"] == "played"
        assert report["late_s"] >= 14.0 and abs(report["played_s"] + report["late_s"] - 60.0) < 0.5
        assert [p.completed for p in box.player.log] == [False, True]
        assert again.state.is_done(relay["id"])
    finally:
        await again.stop()


# ----------------------------------------------------------------- the real player

needs_ffplay = pytest.mark.skipif(
    shutil.which("ffplay") is None or shutil.which("ffmpeg") is None, reason="ffplay or ffmpeg is not installed"
)
BYTES_PER_S = 4000  # 32 kbit/s


@dataclass
class StreamServer:
    base_url: str


@pytest.fixture
def stream_server(tmp_path) -> Iterator[StreamServer]:
    """Serves a 12 s MP3 tone at its own pace on 127.0.0.1: `/long` all of it, `/drop` one second then closes."""
    tone = tmp_path / "tone.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=12"]
        + ["-ar", "22050", "-ac", "1", "-b:a", "32k", "-write_xing", "0", "-id3v2_version", "0", str(tone)],
        check=True,
        timeout=30,
    )
    data = tone.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seconds = {"/long": 12.0, "/drop": 1.0}.get(self.path)
            if seconds is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.end_headers()
            chunk = BYTES_PER_S // 4
            try:
                for offset in range(0, min(len(data), int(seconds * BYTES_PER_S)), chunk):
                    self.wfile.write(data[offset : offset + chunk])
                    self.wfile.flush()
                    time.sleep(0.25)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the player was stopped

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield StreamServer(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def ffplay() -> CommandPlayer:
    return CommandPlayer(clock=SystemClock(), command=["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"])


@pytest.fixture
def no_sound_card(monkeypatch):
    monkeypatch.setitem(os.environ, "SDL_AUDIODRIVER", "dummy")


@needs_ffplay
async def test_real_ffplay_relays_until_the_duration_then_stops(stream_server, no_sound_card):
    started = time.monotonic()
    outcome = await ffplay().play_stream(f"{stream_server.base_url}/long", 2.0, label="b")
    assert outcome.completed and 1.9 <= outcome.played_s <= 3.0
    assert time.monotonic() - started < 4.0


@needs_ffplay
async def test_real_ffplay_stream_closed_by_the_server_is_a_drop(stream_server, no_sound_card):
    url = f"{stream_server.base_url}/drop"
    with pytest.raises(StreamError) as caught:
        await asyncio.wait_for(ffplay().play_stream(url, 10.0, label="b"), 8)
    assert 0.5 <= caught.value.played_s < 5.0
    assert str(caught.value).startswith(f"the stream {url} ended after ")


@needs_ffplay
@pytest.mark.parametrize("where", ["closed port", "404"])
async def test_real_ffplay_stream_that_cannot_be_opened_played_nothing(stream_server, no_sound_card, where):
    if where == "404":
        url = f"{stream_server.base_url}/nothing-here"
    else:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/live"
    with pytest.raises(StreamError) as caught:
        await asyncio.wait_for(ffplay().play_stream(url, 10.0, label="b"), 8)
    assert caught.value.played_s == 0.0
    assert str(caught.value).startswith(f"ffplay could not open the stream {url}: ")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ffplay", ["-volume", "50", "-rw_timeout", "15000000"]),
        ("mpv", ["--volume=50", "--network-timeout=15"]),
        ("mpg123", ["-f", "16384"]),
    ],
)
async def test_each_player_is_given_the_stream_with_its_level_last(tmp_path, name, expected):
    """A stand-in named like the real player writes down its arguments and exits at once: a drop."""
    script, argv_file = tmp_path / name, tmp_path / "argv"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    player = CommandPlayer(clock=SystemClock(), command=[str(script)], volume=50)
    with pytest.raises(StreamError):
        await asyncio.wait_for(player.play_stream(VOV1, 5.0), 5)
    assert json.loads(argv_file.read_text()) == [*expected, VOV1]
