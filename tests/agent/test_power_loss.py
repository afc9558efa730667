"""Acceptance 3 of issue 3: power lost during a download, then restarts from the same disk.

Memory is lost, the disk kept (`Agent.kill()` then a fresh `Agent` on the same data_dir). The command
survives on disk, the download resumes with an HTTP Range request, the cache never holds a file whose
hash differs from its name, and a report made while the broker was out of reach survives a second
power loss in the outbox and reaches the broker once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bcast.broker import free_port
from firmware_sim.network import FaultyHttpClient, HttpFaults
from firmware_sim.origin import AudioOrigin
from mqtt_contract import Channel, Topics
from speaker_agent import Agent
from speaker_agent.cache import file_sha256
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer
from speaker_agent.state import AgentState

from .broker_observer import BROKER, Observer, wait_for
from .conftest import unsigned_config

pytestmark = pytest.mark.broker

CLUSTER = "c-power"
SIZE = 160_000


def assert_cache_clean(agent: Agent) -> None:
    """Every file under its final name has the hash of its name."""
    for path in agent.cache.directory.glob("*.audio"):
        assert file_sha256(path) == path.stem, f"{path.name} does not match its hash"


async def test_power_loss_mid_download_resumes_with_range_and_loses_nothing(tmp_path, topic_root):
    origin = await AudioOrigin().start()
    url, sha, size = origin.add("long.mp3", random.Random(3).randbytes(SIZE))
    slow = HttpFaults(slow={CLUSTER: 40_000})  # about 4 s for the whole file
    slow_http = FaultyHttpClient(slow)
    fast_http = httpx.AsyncClient()
    observer = Observer(topic_root)
    topics = Topics(topic_root)
    player = SimulatedPlayer(clock=SystemClock(), cluster_id=CLUSTER, speed=50)  # the hardware: outlives agents
    config = unsigned_config(
        cluster_id=CLUSTER,
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        keepalive_s=5,
    )
    now = datetime.now(UTC)
    command = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=5)),
        "play": {
            "broadcast_id": "b-storm",
            "priority": "normal",
            "audio": {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 5.0},
        },
    }
    try:
        # 1. Connected; the play arrives and the slow download starts. Power is cut half way.
        first = Agent(config, http=slow_http, player=player)
        await first.start()
        await asyncio.wait_for(first.subscribed.wait(), 10)
        observer.publish(topics.for_cluster(CLUSTER, Channel.COMMAND), json.dumps(command).encode())
        partial = first.cache.partial_path(sha)
        await wait_for(lambda: partial.exists() and partial.stat().st_size >= 20_000, what="download under way")
        await first.kill()
        cut_at = partial.stat().st_size
        assert 0 < cut_at < size
        assert command["id"] in AgentState(config.data_dir / "state.json").pending  # the command is on disk
        assert not first.cache.has(sha)
        assert_cache_clean(first)

        # 2. Power is back but the MQTT broker is out of reach: the agent resumes from disk alone.
        offline_config = dataclasses.replace(config, mqtt_port=free_port())
        second = Agent(offline_config, http=fast_http, player=player)
        await second.start()
        await wait_for(lambda: any(p.completed for p in player.log), what="resumed broadcast played")
        ranges = [r.range for r in origin.requests if r.cluster == CLUSTER and r.range]
        assert f"bytes={cut_at}-" in ranges, ranges  # resumed where the power cut left it, not from zero
        assert [(p.broadcast_id, p.sha256, p.completed) for p in player.log] == [("b-storm", sha, True)]
        assert_cache_clean(second)
        assert second.cache.has(sha) and not list(second.cache.partial_dir.glob("*"))
        await wait_for(lambda: len(second.outbox) == 1, what="report queued on disk")
        queued = second.outbox.pending()[0]
        assert queued["status"] == "played" and queued["command_id"] == command["id"] and queued["late_s"] > 0
        assert not second.connected.is_set()

        # 3. Power lost again before the link came back: the report must survive in the outbox.
        await second.kill()
        third = Agent(config, http=fast_http, player=player)
        await third.start()
        await wait_for(lambda: len(third.outbox) == 0, what="outbox delivered")
        await asyncio.sleep(0.3)  # the broker has it; a second copy, if any, would arrive now
        reports = [r for r in observer.of(Channel.REPORT) if r["command_id"] == command["id"]]
        assert [r["id"] for r in reports] == [queued["id"]]
        assert len(player.log) == 1  # a command done before a restart is never played again
        statuses = [s for s in observer.of(Channel.STATUS) if s["state"] == "online"]
        assert statuses[-1]["seq"] > statuses[0]["seq"]  # the connect counter survived on disk
        await third.stop()
    finally:
        observer.close()
        await slow_http.aclose()
        await fast_http.aclose()
        await origin.close()
        cleanup = mqtt.Client(CallbackAPIVersion.VERSION2)
        cleanup.connect(*BROKER)
        cleanup.publish(topics.for_cluster(CLUSTER, Channel.STATUS), b"", qos=1, retain=True).wait_for_publish(5)
        cleanup.disconnect()


async def test_restart_after_report_written_does_not_act_twice(tmp_path, topic_root):
    """Power cut between writing a report to the outbox and marking its command done: no second outcome."""
    config = unsigned_config(
        cluster_id="c-twice",
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        mqtt_port=free_port(),
    )
    now = datetime.now(UTC)
    ping = {
        "v": 1,
        "id": "p-1",
        "type": "ping",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=5)),
    }
    state = AgentState(config.data_dir / "state.json")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    state.accept(ping)
    pending = {**ping, "id": "p-2"}
    state.accept(pending)
    made: list[dict] = []
    async with httpx.AsyncClient() as http:
        first = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-twice"))
        first.outbox.put({"v": 1, "id": "r-1", "ts": isoformat(now), "command_id": "p-1", "status": "pong"})
        agent = Agent(
            config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-twice"), on_report=made.append
        )
        await agent.start()
        await wait_for(lambda: not agent.state.pending, what="pending commands handled")
        await agent.kill()
    # p-1 already had its report: only marked done. p-2 had none: carried out once.
    assert [(r["command_id"], r["status"]) for r in made] == [("p-2", "pong")]
    assert {"p-1", "p-2"} <= set(AgentState(config.data_dir / "state.json").done)


async def test_a_repeating_alert_goes_on_after_a_power_cut_without_replaying_what_played(
    tmp_path, topic_root, audio_server
):
    """Power cut after the first of three plays: the restarted agent plays the other two, not three."""
    config = unsigned_config(
        cluster_id="c-rep",
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        mqtt_port=free_port(),
    )
    url, sha, size = audio_server.add("alert.mp3", b"R" * 900)
    now = datetime.now(UTC)
    alert = {
        "v": 1,
        "id": "rep-1",
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=5)),
        "play": {
            "broadcast_id": "b-rep",
            "priority": "emergency",
            "audio": {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 0.2},
            "repeat": {"times": 3, "interval_s": 1},
        },
    }
    config.data_dir.mkdir(parents=True, exist_ok=True)
    state = AgentState(config.data_dir / "state.json")
    state.accept(alert)
    state.set_progress("rep-1", 1)
    made: list[dict] = []
    player = SimulatedPlayer(clock=SystemClock(), cluster_id="c-rep")
    async with httpx.AsyncClient() as http:
        first = Agent(config, http=http, player=player)
        first.outbox.put(  # the first play's report, written just before the power went
            {"v": 1, "id": "r-1", "ts": isoformat(now), "command_id": "rep-1", "status": "played"}
            | {"broadcast_id": "b-rep", "repetition": 1, "repetitions": 3}
        )
        agent = Agent(config, http=http, player=player, on_report=made.append)
        await agent.start()
        await wait_for(lambda: not agent.state.pending, what="the alert finished")
        await agent.kill()
    assert [(r["status"], r["repetition"]) for r in made] == [("played", 2), ("played", 3)]
    assert len(player.log) == 2
    assert "rep-1" in AgentState(config.data_dir / "state.json").done
