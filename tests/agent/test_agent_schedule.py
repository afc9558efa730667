"""A real agent on the broker keeps its schedule window on disk and plays it on time, even offline."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_contract import Channel, Topics, validate
from mqtt_contract.times import isoformat
from speaker_agent import Agent
from speaker_agent.clock import AcceleratedClock
from speaker_agent.player import SimulatedPlayer
from speaker_agent.playout import AudioRef, Entry, Item, plan
from speaker_agent.playout.store import entry_to_message

from .conftest import unsigned_config

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
