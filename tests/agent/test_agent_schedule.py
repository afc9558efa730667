"""A real agent on the broker keeps its schedule window on disk and plays it on time, even offline.

The last tests schedule live relays (tiếp sóng): a relay item relays for its duration from when it starts,
through the agent's reconnect loop, and nothing of it is downloaded ahead."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_contract import Channel, Topics, validate
from mqtt_contract.times import isoformat, parse_time
from speaker_agent import Agent
from speaker_agent.clock import AcceleratedClock
from speaker_agent.player import PlayerError, SimulatedPlayer, StreamError
from speaker_agent.playout import AudioRef, Entry, Item, StreamRef, plan
from speaker_agent.playout.store import entry_to_message

from .broker_observer import Observer, wait_for
from .conftest import AudioServer, unsigned_config

pytestmark = pytest.mark.broker

SPEED = 300.0
T0 = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)


def schedule_command(version: int, entries: list[Entry], window_end: datetime, now: datetime) -> dict:
    command = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "schedule",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(hours=1)),
        "schedule": {
            "version": version,
            "window_end": isoformat(window_end),
            "entries": [entry_to_message(e) for e in entries],
        },
    }
    return validate(Channel.COMMAND, command)


@pytest.fixture
def report_tap(topic_root: str) -> Iterator[tuple[mqtt.Client, list[dict]]]:
    """A client on the broker that publishes commands and keeps every report the agents send."""
    received: list[dict] = []
    tap = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:6]}")
    tap.on_message = lambda c, u, m: received.append(json.loads(m.payload)) if m.topic.endswith("/report") else None
    tap.connect("127.0.0.1", 1883)
    tap.subscribe(f"{topic_root}/#", qos=1)
    tap.loop_start()
    yield tap, received
    tap.loop_stop()
    tap.disconnect()


async def test_schedule_window_plays_as_previewed_and_from_disk_while_offline(
    tmp_path, audio_server, topic_root, report_tap
):
    url, sha, size = audio_server.add("s.mp3", b"ID3" + bytes(2000))
    ref = AudioRef(url, sha, size, 60.0)
    entries = [
        Entry("sang@1", T0, "Sáng", (Item("a", ref), Item("p", ref, "priority"))),
        Entry("tin@1", T0 + timedelta(seconds=20), "Tin", (Item("n", ref),), layer="insert"),
        Entry("chieu@1", T0 + timedelta(minutes=10), "Chiều", (Item("c", ref),)),
    ]
    clock = AcceleratedClock(T0 - timedelta(seconds=30), SPEED)
    player = SimulatedPlayer(clock=clock, cluster_id="c-s")
    tap, received = report_tap
    config = unsigned_config(cluster_id="c-s", data_dir=tmp_path / "agent", topic_root=topic_root)
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        command = schedule_command(1, entries, T0 + timedelta(hours=1), clock.now())
        tap.publish(Topics(topic_root).for_cluster("c-s", Channel.COMMAND), json.dumps(command), qos=1)
        for _ in range(200):
            if agent.cache.has(sha):
                break
            await asyncio.sleep(0.02)
        assert agent.cache.has(sha), "the window's audio is fetched ahead of time"
        agent.link_lost()  # the network goes down before anything is due
        await asyncio.sleep(clock.wall_seconds(20 * 60))
        assert [r.completed for r in player.log] == [True] * 4
        agent.link_restored()
        for _ in range(300):
            if sum(1 for r in received if r["status"] == "played") >= 4:
                break
            await asyncio.sleep(0.02)
        await agent.stop()
    preview = plan(entries, start=T0 - timedelta(seconds=30), end=T0 + timedelta(hours=1))
    played = [r["command_id"] for r in received if r["status"] == "played"]
    assert played == [f"{p.entry_id}#{p.item_index}" for p in preview]  # queued while offline, sent once back
    assert any(r["status"] == "applied" and "v1" in r["reason"] for r in received)
    # QoS 1 across a link drop may deliver a report twice (the server keeps it once, by id), but there is
    # never a second report for the same outcome.
    assert len({r["id"] for r in received}) == len({(r["command_id"], r["status"]) for r in received})


async def test_a_newer_window_without_an_airing_takes_it_off_the_air(tmp_path, audio_server, topic_root, report_tap):
    """What a cancelled slot does on the cluster: the next window no longer holds its airing, so it never plays
    and is not reported missed either; the airing that stays plays."""
    url, sha, size = audio_server.add("c.mp3", b"ID3" + bytes(1000))
    ref = AudioRef(url, sha, size, 30.0)
    kept = Entry("chieu@1", T0 + timedelta(minutes=2), "Chiều", (Item("c", ref),))
    cancelled = Entry("cds@1", T0 + timedelta(minutes=5), "Chuyển đổi số", (Item("d", ref),))
    clock = AcceleratedClock(T0, SPEED)
    player = SimulatedPlayer(clock=clock, cluster_id="c-x")
    tap, received = report_tap
    topic = Topics(topic_root).for_cluster("c-x", Channel.COMMAND)
    config = unsigned_config(cluster_id="c-x", data_dir=tmp_path / "agent", topic_root=topic_root)

    async def applied(version: int) -> None:
        for _ in range(300):
            if any(r["status"] == "applied" and f"v{version}" in r["reason"] for r in received):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"window v{version} was never applied")

    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        first = schedule_command(1, [kept, cancelled], T0 + timedelta(hours=1), clock.now())
        tap.publish(topic, json.dumps(first), qos=1)
        await applied(1)
        second = schedule_command(2, [kept], T0 + timedelta(hours=1), clock.now())
        tap.publish(topic, json.dumps(second), qos=1)
        await applied(2)
        await asyncio.sleep(clock.wall_seconds(30 * 60))  # past both, and past the 15 minutes of lateness
        for _ in range(300):
            if any(r["status"] == "played" for r in received):
                break
            await asyncio.sleep(0.02)
        await agent.stop()
    assert [r.broadcast_id for r in player.log] == ["chieu@1"]
    outcomes = [(r["command_id"], r["status"]) for r in received]
    assert ("chieu@1#0", "played") in outcomes
    assert [o for o in outcomes if o[0].startswith("cds@1")] == []  # neither played nor reported missed


async def test_a_scheduled_item_is_not_played_while_a_technician_holds_the_amplifier_off(
    tmp_path, audio_server, topic_root, report_tap
):
    url, sha, size = audio_server.add("h.mp3", b"ID3" + bytes(1000))
    entry = Entry("sang@1", T0 + timedelta(minutes=2), "Sáng", (Item("s", ref := AudioRef(url, sha, size, 30.0)),))
    clock = AcceleratedClock(T0, SPEED)
    player = SimulatedPlayer(clock=clock, cluster_id="c-h")
    tap, received = report_tap
    topic = Topics(topic_root).for_cluster("c-h", Channel.COMMAND)
    config = unsigned_config(cluster_id="c-h", data_dir=tmp_path / "agent", topic_root=topic_root)
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        off = validate(
            Channel.COMMAND,
            {
                "v": 1,
                "id": uuid.uuid4().hex,
                "type": "amplifier",
                "issued_at": isoformat(clock.now()),
                "expires_at": isoformat(clock.now() + timedelta(hours=1)),
                "amplifier": "off",
            },
        )
        tap.publish(topic, json.dumps(off), qos=1)
        tap.publish(topic, json.dumps(schedule_command(1, [entry], T0 + timedelta(hours=1), clock.now())), qos=1)
        await asyncio.sleep(clock.wall_seconds(5 * 60))  # past the item's time
        for _ in range(300):
            if any(r["command_id"] == "sang@1#0" for r in received):
                break
            await asyncio.sleep(0.02)
        await agent.stop()
    assert agent.cache.has(ref.sha256)  # fetched ahead as usual: ready the moment it is switched back on
    assert player.log == []
    outcome = next(r for r in received if r["command_id"] == "sang@1#0")
    assert (outcome["status"], outcome["reason"]) == ("failed", "amplifier held off by a technician's command")


# ----------------------------------------------------------------- scheduled relays

RELAY_SPEED = 20.0  # slower than SPEED: drops and reconnect waits of a second must stay measurable


class CountingHttp:
    """The agent's HTTP client, noting every URL its downloader asks for."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.requested: list[str] = []

    def stream(self, method: str, url: str, *, headers: dict[str, str]):
        self.requested.append(url)
        return self.client.stream(method, url, headers=headers)


@dataclass
class RelayBox:
    agent: Agent
    player: SimulatedPlayer
    observer: Observer
    clock: AcceleratedClock
    http: CountingHttp
    stream_url: str  # on a port nobody listens on: only the simulated player "connects" to it

    def schedule(self, *entries: Entry) -> None:
        now = self.clock.now()
        self.observer.send(self.agent.cluster_id, schedule_command(1, list(entries), now + timedelta(hours=1), now))

    def reports_for(self, command_id: str) -> list[dict]:
        return [r for r in self.observer.reports() if r["command_id"] == command_id]

    def file(self, server: AudioServer, name: str, seconds: float) -> Item:
        url, sha, size = server.add(name, name.encode() * 300)
        return Item(name, AudioRef(url, sha, size, seconds))

    def relay(self, seconds: int) -> Item:
        return Item("Tiếp sóng VOV1", stream=StreamRef(self.stream_url, seconds))


@pytest.fixture
async def relay_box(tmp_path, topic_root) -> AsyncIterator[RelayBox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        stream_url = f"http://127.0.0.1:{probe.getsockname()[1]}/vov1.mp3"
    observer = Observer(topic_root)
    clock = AcceleratedClock(T0, RELAY_SPEED)
    cluster_id = f"c-srelay-{uuid.uuid4().hex[:8]}"  # MQTT client ids are the broker's, whatever the topic root
    player = SimulatedPlayer(clock=clock, cluster_id=cluster_id)
    config = unsigned_config(cluster_id=cluster_id, data_dir=tmp_path / "box", topic_root=topic_root)
    async with httpx.AsyncClient() as client:
        http = CountingHttp(client)
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        yield RelayBox(agent, player, observer, clock, http, stream_url)
        await agent.stop()
    observer.close()


def seconds_between(earlier: str, later: str) -> float:
    return (parse_time(later) - parse_time(earlier)).total_seconds()


async def test_a_relay_item_after_a_file_relays_its_duration_from_the_files_end(relay_box, audio_server):
    box = relay_box
    intro = box.file(audio_server, "intro.mp3", 20.0)
    box.schedule(Entry("toi@1", box.clock.now() + timedelta(seconds=5), "Thời sự tối", (intro, box.relay(30))))
    await wait_for(lambda: box.reports_for("toi@1#1"), what="the relay's report")
    [played_intro], [relayed] = box.reports_for("toi@1#0"), box.reports_for("toi@1#1")
    assert played_intro["status"] == relayed["status"] == "played"
    assert 0 <= seconds_between(played_intro["ended_at"], relayed["started_at"]) < 3.0  # on at the file's end
    assert abs(relayed["played_s"] - 30) < 0.5 and "reason" not in relayed
    assert abs(seconds_between(relayed["started_at"], relayed["ended_at"]) - 30) < 2.0
    assert [(r.file, r.completed) for r in box.player.log] == [
        (f"{intro.audio.sha256}.audio", True),
        (box.stream_url, True),
    ]
    # Only the file was downloaded (ahead of time); the stream was never fetched, nor kept from eviction.
    assert box.http.requested and set(box.http.requested) == {intro.audio.url}
    assert box.agent._needed_files() == {intro.audio.sha256}


async def test_a_relay_item_whose_stream_is_down_fails_and_the_next_item_plays(relay_box, audio_server):
    box = relay_box
    box.player.stream_down = {box.stream_url}
    after = box.file(audio_server, "tin-xa.mp3", 10.0)
    box.schedule(Entry("tin@1", box.clock.now() + timedelta(seconds=5), "Tin", (box.relay(10), after)))
    await wait_for(lambda: box.reports_for("tin@1#1"), what="the next item's report")
    [down], [next_item] = box.reports_for("tin@1#0"), box.reports_for("tin@1#1")
    expected = f"stream unreachable: could not open the stream {box.stream_url}: connection refused (simulated)"
    assert (down["status"], down["reason"]) == ("failed", expected) and "played_s" not in down
    assert next_item["status"] == "played"
    assert [(r.file, r.completed) for r in box.player.log] == [(f"{after.audio.sha256}.audio", True)]
    assert box.agent.last_error == expected


async def test_a_relay_item_that_drops_reconnects_and_leaves_the_gap_out(relay_box):
    box = relay_box
    box.player.stream_drops = {box.stream_url: 10.0}
    box.schedule(Entry("vov@1", box.clock.now() + timedelta(seconds=5), "VOV1", (box.relay(40),)))
    await wait_for(lambda: box.reports_for("vov@1#0"), what="the relay's report")
    [relayed] = box.reports_for("vov@1#0")
    assert relayed["status"] == "played"
    # 10 s, a drop, a 1 s wait, then the rest of its 40 s: the gap is not in played_s.
    assert 37.0 <= relayed["played_s"] <= 39.05
    assert abs(seconds_between(relayed["started_at"], relayed["ended_at"]) - 40) < 2.0
    assert relayed["reason"].startswith(f"stream dropped 1 time; relayed {relayed['played_s']:.0f} of 40 s; last: ")
    assert relayed["reason"].endswith("dropped after 10.0 s (simulated)")
    assert [(round(r.played_s), r.completed) for r in box.player.log][0] == (10, False)
    assert box.player.log[1].completed and len(box.player.log) == 2


async def test_an_emergency_cuts_a_scheduled_relay_which_then_relays_only_the_rest(relay_box, audio_server):
    box = relay_box
    entry = Entry("vov@1", box.clock.now() + timedelta(seconds=5), "VOV1", (box.relay(40),), on_interrupt="resume")
    box.schedule(entry)
    await wait_for(lambda: box.agent.playing == "vov@1", what="the relay on air")
    await asyncio.sleep(10 / RELAY_SPEED)
    url, sha, size = audio_server.add("lu.mp3", b"L" * 1000)
    now = box.clock.now()
    flood = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=5)),
        "play": {
            "broadcast_id": "b-lu",
            "priority": "emergency",
            "audio": {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 4},
        },
    }
    box.observer.send(box.agent.cluster_id, flood)
    await wait_for(lambda: len(box.reports_for("vov@1#0")) == 2, what="the relay cut, then its rest")
    cut, rest = box.reports_for("vov@1#0")
    assert (cut["status"], cut["reason"]) == ("stopped", "interrupted; on_interrupt=resume")
    assert 2.0 < cut["played_s"] < 36.0
    [alert] = box.reports_for(flood["id"])
    assert alert["status"] == "played"
    relayed = [r for r in box.player.log if r.file == box.stream_url]
    assert [r.completed for r in relayed] == [False, True]
    assert abs(relayed[0].played_s - cut["played_s"]) < 1.0
    assert abs(relayed[1].played_s - (40 - cut["played_s"])) < 1.0  # only what was left of its 40 s
    assert relayed[1].started_at >= parse_time(alert["ended_at"])
    assert rest["status"] == "played" and abs(rest["played_s"] - 40) < 1.0  # as a resumed file: both parts


async def test_a_resumed_relay_that_cannot_reconnect_still_counts_what_it_relayed_before(tmp_path):
    """Called as the runner calls it, no broker needed: the amplifier held off, then a resume whose stream is down."""
    clock = AcceleratedClock(T0, 50.0)
    player = SimulatedPlayer(clock=clock, cluster_id="c-resume", stream_down={"http://live.example.vn/vov1.mp3"})
    config = unsigned_config(cluster_id="c-resume", data_dir=tmp_path / "box", topic_root="unused")
    agent = Agent(config, http=None, player=player, clock=clock)  # never downloads here
    agent.state.set_amplifier_off(True)
    with pytest.raises(PlayerError, match="amplifier held off"):
        await agent.relay_scheduled("http://live.example.vn/vov1.mp3", 60, "vov@1", start_s=0.0)
    agent.state.set_amplifier_off(False)
    outcome = await asyncio.wait_for(agent.relay_scheduled("http://live.example.vn/vov1.mp3", 60, "vov@1", 50), 5)
    assert outcome.played_s == 0 and not outcome.completed  # the runner adds the 50 s relayed before the cut
    assert re.match(r"stream dropped \d times; relayed 50 of 60 s; last: could not open the stream", outcome.reason)
    with pytest.raises(StreamError, match="^stream unreachable: could not open the stream"):
        await asyncio.wait_for(agent.relay_scheduled("http://live.example.vn/vov1.mp3", 10, "vov@1"), 5)
    assert player.log == [] and agent._speaker.holder is None and agent.playing is None
