"""The real agent against the machine's Mosquitto: play, verify, report, reject, last will."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_contract import Channel, Topics, decode
from speaker_agent import Agent
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer

from .broker_observer import BROKER, Observer, wait_for
from .conftest import flip_a_byte, unsigned_config

pytestmark = pytest.mark.broker


def play_command(url: str, sha: str, size: int, *, expires_in: float = 60, broadcast_id: str = "b1") -> dict:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=expires_in)),
        "play": {
            "broadcast_id": broadcast_id,
            "priority": "normal",
            "audio": {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 2.0},
        },
    }


@pytest.fixture
async def running(tmp_path, topic_root):
    observer = Observer(topic_root)
    clock = SystemClock()
    player = SimulatedPlayer(clock=clock, cluster_id="c-1", speed=20)
    config = unsigned_config(
        cluster_id="c-1",
        data_dir=tmp_path / "agent",
        topic_root=topic_root,
        heartbeat_interval_s=0.5,
    )
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await asyncio.wait_for(agent.connected.wait(), 5)
        await asyncio.wait_for(agent.subscribed.wait(), 5)  # SUBACK: commands published now reach us
        yield agent, player, observer
        await agent.stop()
    observer.close()


async def test_play_downloads_verifies_plays_and_reports(running, audio_server, topic_root):
    agent, player, observer = running
    url, sha, size = audio_server.add("a.mp3", b"ID3" + bytes(5000))
    command = play_command(url, sha, size)
    observer.publish(Topics(topic_root).for_cluster("c-1", Channel.COMMAND), json.dumps(command).encode())
    await wait_for(lambda: any(r["status"] == "played" for r in observer.of(Channel.REPORT)))
    report = next(r for r in observer.of(Channel.REPORT) if r["status"] == "played")
    assert report["command_id"] == command["id"] and report["broadcast_id"] == "b1"
    assert [(r.broadcast_id, r.completed) for r in player.log] == [("b1", True)]
    assert agent.cache.verify(sha)
    # The outbox empties once the broker acknowledged the report.
    await wait_for(lambda: len(agent.outbox) == 0)
    # Same command again (QoS 1 redelivery): acted on once.
    observer.publish(Topics(topic_root).for_cluster("c-1", Channel.COMMAND), json.dumps(command).encode())
    await asyncio.sleep(0.5)
    assert len(player.log) == 1
    assert all(decode(Channel.REPORT, json.dumps(r).encode()) for r in observer.of(Channel.REPORT))
    assert observer.of(Channel.HEARTBEAT), "heartbeats are published"


async def test_corrupted_audio_is_never_played(running, audio_server, topic_root):
    agent, player, observer = running
    url, sha, size = audio_server.add("b.mp3", b"good bytes" * 100)
    (audio_server.root / "b.mp3").write_bytes(b"evil bytes" * 100)  # same size, other content
    observer.publish(
        Topics(topic_root).for_cluster("c-1", Channel.COMMAND), json.dumps(play_command(url, sha, size)).encode()
    )
    await wait_for(lambda: any(r["status"] == "failed" for r in observer.of(Channel.REPORT)), timeout=30)
    assert player.log == []
    assert not agent.cache.has(sha)
    assert "SHA-256" in next(r for r in observer.of(Channel.REPORT) if r["status"] == "failed")["reason"]


async def test_a_cached_file_that_rotted_is_fetched_again_before_it_plays(running, audio_server, topic_root):
    agent, player, observer = running
    url, sha, size = audio_server.add("c.mp3", b"ban tin" * 3000)
    topic = Topics(topic_root).for_cluster("c-1", Channel.COMMAND)
    observer.publish(topic, json.dumps(play_command(url, sha, size)).encode())
    await wait_for(lambda: [r["status"] for r in observer.of(Channel.REPORT)] == ["played"])
    # Hours later (nothing hashed is fresh any more) the card has flipped a bit of the cached file.
    agent.cache.fresh_s = 0.0
    flip_a_byte(agent.cache.path_for(sha))
    observer.publish(topic, json.dumps(play_command(url, sha, size, broadcast_id="b2")).encode())
    await wait_for(lambda: [r["status"] for r in observer.of(Channel.REPORT)] == ["played", "played"])
    assert [r.broadcast_id for r in player.log] == ["b1", "b2"]
    assert hashlib.sha256(agent.cache.path_for(sha).read_bytes()).hexdigest() == sha  # fetched again


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1,2]", b'{"v":1,"id":"x1","type":"explode"}', json.dumps({"v": 2}).encode(), b"\xff\xfe"],
)
async def test_malformed_command_is_refused_and_reported(running, topic_root, payload):
    agent, player, observer = running
    observer.publish(Topics(topic_root).for_cluster("c-1", Channel.COMMAND), payload)
    await wait_for(lambda: any(r["status"] == "rejected" for r in observer.of(Channel.REPORT)))
    assert agent.connected.is_set() and player.log == []


async def test_expired_play_is_reported_missed(running, audio_server, topic_root):
    agent, player, observer = running
    url, sha, size = audio_server.add("c.mp3", b"x" * 100)
    observer.publish(
        Topics(topic_root).for_cluster("c-1", Channel.COMMAND),
        json.dumps(play_command(url, sha, size, expires_in=-1)).encode(),
    )
    await wait_for(lambda: any(r["status"] == "missed" for r in observer.of(Channel.REPORT)))
    assert "expired" in observer.of(Channel.REPORT)[-1]["reason"] and player.log == []


async def test_status_is_retained_and_will_fires_with_its_seq(tmp_path, topic_root):
    observer = Observer(topic_root)
    try:
        config = unsigned_config(
            cluster_id="c-2",
            data_dir=tmp_path / "a2",
            topic_root=topic_root,
            keepalive_s=5,
        )
        async with httpx.AsyncClient() as http:
            agent = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-2"))
            await agent.start()
            await asyncio.wait_for(agent.connected.wait(), 5)
            await wait_for(lambda: observer.of(Channel.STATUS))
            online = observer.of(Channel.STATUS)[-1]
            assert online["state"] == "online" and online["seq"] == 1
            await agent.kill()  # no DISCONNECT: the broker must publish the will
            await wait_for(lambda: observer.of(Channel.STATUS)[-1]["state"] == "offline", timeout=15)
            assert observer.of(Channel.STATUS)[-1]["seq"] == 1
            # A restart from the same disk connects with a higher seq.
            agent2 = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-2"))
            await agent2.start()
            await wait_for(lambda: observer.of(Channel.STATUS)[-1]["state"] == "online")
            assert observer.of(Channel.STATUS)[-1]["seq"] == 2
            await agent2.stop()
            await wait_for(lambda: observer.of(Channel.STATUS)[-1]["state"] == "offline")
        # Retained: a newcomer sees the last state at once.
        late = Observer(topic_root)
        await wait_for(lambda: late.messages)
        assert late.messages[0][2] is True
        late.close()
    finally:
        observer.close()
        cleanup = mqtt.Client(CallbackAPIVersion.VERSION2)
        cleanup.connect(*BROKER)
        cleanup.publish(
            Topics(topic_root).for_cluster("c-2", Channel.STATUS), b"", qos=1, retain=True
        ).wait_for_publish(5)
        cleanup.disconnect()
