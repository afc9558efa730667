"""Eviction: least recently used files go first when space runs low; a file a pending command needs stays."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim.origin import AudioOrigin
from mqtt_contract import Channel, Topics
from speaker_agent import Agent
from speaker_agent.cache import AudioCache, CacheFullError
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer

from .conftest import unsigned_config

BROKER = ("127.0.0.1", 1883)


def put(cache: AudioCache, data: bytes, used_at: float) -> str:
    """Store `data` as a verified download would, last used at `used_at` (epoch seconds)."""
    sha = hashlib.sha256(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.write_bytes(data)
    cache.commit(sha, partial, len(data))
    os.utime(cache.path_for(sha), (used_at, used_at))
    return sha


def test_least_recently_used_goes_first_and_kept_files_never(tmp_path: Path):
    cache = AudioCache(tmp_path / "cache", max_bytes=3000)
    oldest = put(cache, b"a" * 1000, 1_000)
    middle = put(cache, b"b" * 1000, 2_000)
    newest = put(cache, b"c" * 1000, 3_000)
    cache.touch(middle)  # just played: now the most recently used
    evicted = cache.make_room(1000, keep={oldest})
    assert evicted == [newest]  # oldest is kept (pending), middle was used just now
    assert cache.has(oldest) and cache.has(middle) and not cache.has(newest)
    with pytest.raises(CacheFullError):
        cache.make_room(2500, keep={oldest, middle})  # the kept files alone leave no room
    assert cache.has(oldest) and cache.has(middle)


def test_low_disk_space_evicts_down_to_the_reserve(tmp_path: Path):
    capacity = 10_000
    holder: dict[str, AudioCache] = {}
    cache = AudioCache(
        tmp_path / "cache", min_free_bytes=4_000, disk_free=lambda: capacity - holder["cache"].used_bytes()
    )
    holder["cache"] = cache
    files = [put(cache, bytes([i]) * 2000, 1_000 + i) for i in range(3)]  # 6,000 used, 4,000 free
    assert cache.free_bytes() == 0
    assert cache.make_room(2000) == [files[0]]  # one file out leaves 4,000 free after the new 2,000
    assert cache.make_room(1) == []  # 6,000 free: nothing to do
    put(cache, b"n" * 2000, 5_000)  # the download it made room for
    assert cache.make_room(1) == [files[1]]
    assert cache.has(files[2])


@pytest.mark.broker
async def test_agent_never_evicts_the_audio_of_a_command_still_waiting(tmp_path, topic_root):
    origin = await AudioOrigin().start()
    files = {name: origin.add(f"{name}.mp3", name.encode() * 4000) for name in ("later", "first", "third")}
    size = files["later"][2]
    topics = Topics(topic_root)
    seen: list[dict] = []
    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{uuid.uuid4().hex[:8]}")
    observer.on_message = lambda c, u, m: seen.append(json.loads(m.payload))
    observer.connect(*BROKER)
    observer.subscribe(topics.for_cluster("c-evict", Channel.REPORT), qos=1)
    observer.loop_start()
    player = SimulatedPlayer(clock=SystemClock(), cluster_id="c-evict", speed=20)
    # Room for two files: the third download must evict one.
    config = unsigned_config(
        cluster_id="c-evict",
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        cache_max_bytes=2 * size + size // 2,
        cache_min_free_bytes=0,
    )
    now = datetime.now(UTC)

    def play(name: str, start_in_s: float) -> dict:
        url, sha, size = files[name]
        return {
            "v": 1,
            "id": uuid.uuid4().hex,
            "type": "play",
            "issued_at": isoformat(now),
            "expires_at": isoformat(now + timedelta(seconds=60)),
            "play": {
                "broadcast_id": f"b-{name}",
                "priority": "normal",
                "start_at": isoformat(now + timedelta(seconds=start_in_s)),
                "audio": {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 1.0},
            },
        }

    later, first, third = play("later", 3.0), play("first", 0), play("third", 0)
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player)
        await agent.start()
        try:
            await asyncio.wait_for(agent.subscribed.wait(), 10)
            deadline = asyncio.get_running_loop().time() + 20
            for count, command in enumerate((later, first, third)):
                # 'third' goes out once 'first' has played: 'first' is then no longer needed.
                while len(seen) < count - 1 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                observer.publish(
                    topics.for_cluster("c-evict", Channel.COMMAND), json.dumps(command).encode(), qos=1
                ).wait_for_publish(5)
            while len(seen) < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await agent.stop()
            observer.loop_stop()
            observer.disconnect()
            await origin.close()
    outcome = {r["command_id"]: r["status"] for r in seen}
    assert outcome == {later["id"]: "played", first["id"]: "played", third["id"]: "played"}
    # 'later' was the least recently used file when 'third' needed room, but its command was waiting:
    # it stayed, 'first' went, and 'later' was downloaded exactly once.
    fetched = [r.path for r in origin.requests]
    assert fetched.count("/audio/later.mp3") == 1
    assert not agent.cache.has(files["first"][1])
    assert [p.broadcast_id for p in player.log] == ["b-first", "b-third", "b-later"]
