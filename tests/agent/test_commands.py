"""Emergency preemption and the volume command, on the machine's Mosquitto with the real agent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mqtt_contract import Channel
from speaker_agent import Agent
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer
from speaker_agent.state import AgentState

from .broker_observer import Observer, wait_for
from .conftest import unsigned_config

pytestmark = pytest.mark.broker


def command(kind: str, **fields) -> dict:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": kind,
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=60)),
        **fields,
    }


def play(url: str, sha: str, size: int, broadcast_id: str, duration_s: float, priority: str = "normal") -> dict:
    audio = {"url": url, "sha256": sha, "size_bytes": size, "duration_s": duration_s}
    return command("play", play={"broadcast_id": broadcast_id, "priority": priority, "audio": audio})


@pytest.fixture
async def agent_on_broker(tmp_path, topic_root):
    observer = Observer(topic_root)
    player = SimulatedPlayer(clock=SystemClock(), cluster_id="c-cmd", speed=10)
    config = unsigned_config(
        cluster_id="c-cmd",
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        heartbeat_interval_s=30,
    )
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=player)
        await agent.start()
        await asyncio.wait_for(agent.subscribed.wait(), 10)
        yield agent, player, observer, http
        await agent.stop()
    observer.close()


async def test_emergency_interrupts_a_normal_play_and_goes_before_queued_ones(agent_on_broker, audio_server):
    agent, player, observer, _ = agent_on_broker
    long_url, long_sha, long_size = audio_server.add("long.mp3", b"L" * 3000)
    short_url, short_sha, short_size = audio_server.add("short.mp3", b"S" * 2000)
    alarm_url, alarm_sha, alarm_size = audio_server.add("alarm.mp3", b"A" * 1000)
    ordinary = play(long_url, long_sha, long_size, "b-ordinary", duration_s=300)  # 30 s at speed 10
    queued = play(short_url, short_sha, short_size, "b-queued", duration_s=1)
    emergency = play(alarm_url, alarm_sha, alarm_size, "b-flood", duration_s=1, priority="emergency")

    observer.send("c-cmd", ordinary)
    await wait_for(lambda: agent.playing == "b-ordinary", what="ordinary broadcast playing")
    observer.send("c-cmd", queued)
    await wait_for(lambda: agent.cache.has(short_sha), what="queued broadcast downloaded")
    observer.send("c-cmd", emergency)
    await wait_for(
        lambda: all(observer.report_for(c["id"]) for c in (ordinary, queued, emergency)), what="three reports"
    )

    interrupted = observer.report_for(ordinary["id"])
    assert interrupted["status"] == "stopped" and interrupted["reason"] == "interrupted"
    assert interrupted["played_s"] < 300
    assert observer.report_for(emergency["id"])["status"] == "played"
    assert observer.report_for(queued["id"])["status"] == "played"
    # What the speaker did: the ordinary one cut short, then the emergency, then the one that waited.
    assert [(p.broadcast_id, p.completed) for p in player.log] == [
        ("b-ordinary", False),
        ("b-flood", True),
        ("b-queued", True),
    ]


async def test_ping_is_answered_with_a_pong_and_a_heartbeat_at_once(agent_on_broker):
    """The heartbeat interval here is 30 s: the one after the pong is the ping's, not the timer's."""
    agent, _, observer, _ = agent_on_broker
    await wait_for(lambda: observer.of(Channel.HEARTBEAT), what="the first heartbeat")
    beats = len(observer.of(Channel.HEARTBEAT))
    ping = command("ping")
    observer.send("c-cmd", ping)
    await wait_for(lambda: observer.report_for(ping["id"]), what="pong")
    assert observer.report_for(ping["id"])["status"] == "pong"
    await wait_for(lambda: len(observer.of(Channel.HEARTBEAT)) > beats, timeout=10, what="heartbeat after the ping")


async def test_volume_is_applied_reported_in_heartbeat_and_kept_across_restart(agent_on_broker, audio_server):
    agent, player, observer, http = agent_on_broker
    set_volume = command("volume", volume=35)
    observer.send("c-cmd", set_volume)
    await wait_for(lambda: observer.report_for(set_volume["id"]), what="volume report")
    assert observer.report_for(set_volume["id"])["status"] == "applied"
    await wait_for(lambda: any(h["volume"] == 35 for h in observer.of(Channel.HEARTBEAT)), what="heartbeat")
    url, sha, size = audio_server.add("v.mp3", b"V" * 500)
    broadcast = play(url, sha, size, "b-vol", duration_s=0.5)
    observer.send("c-cmd", broadcast)
    await wait_for(lambda: observer.report_for(broadcast["id"]), what="play report")
    assert [p.volume for p in player.log] == [35]  # the speaker played at the level set

    # Out of range: refused by the contract, the level stays.
    too_loud = command("volume", volume=101)
    observer.send("c-cmd", too_loud)
    await wait_for(lambda: observer.report_for(too_loud["id"]), what="rejection")
    assert observer.report_for(too_loud["id"])["status"] == "rejected"
    assert agent.volume == 35

    # Restart from the same disk: the level is remembered and reported.
    await agent.stop()
    fresh_player = SimulatedPlayer(clock=SystemClock(), cluster_id="c-cmd")
    again = Agent(agent.config, http=http, player=fresh_player)
    beats = len(observer.of(Channel.HEARTBEAT))
    await again.start()
    try:
        await wait_for(lambda: len(observer.of(Channel.HEARTBEAT)) > beats, what="heartbeat after restart")
        assert observer.of(Channel.HEARTBEAT)[-1]["volume"] == 35
        assert fresh_player.volume == 35
    finally:
        await again.stop()


async def test_amplifier_fault_fails_the_play_and_shows_in_the_heartbeat(agent_on_broker, audio_server):
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("amp.mp3", b"X" * 800)
    player.amplifier_fault = True
    broadcast = play(url, sha, size, "b-amp", duration_s=0.5)
    observer.send("c-cmd", broadcast)
    await wait_for(lambda: observer.report_for(broadcast["id"]), what="report")
    report = observer.report_for(broadcast["id"])
    assert report["status"] == "failed" and "amplifier" in report["reason"]
    await wait_for(
        lambda: any(h["amplifier"] == "fault" for h in observer.of(Channel.HEARTBEAT)), what="fault in heartbeat"
    )
    beat = next(h for h in observer.of(Channel.HEARTBEAT) if h["amplifier"] == "fault")
    assert "amplifier" in beat["last_error"] and player.log == []


async def test_an_alert_repeats_at_a_forced_level_then_the_cluster_level_returns(agent_on_broker, audio_server):
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("storm.mp3", b"B" * 800)
    alert = play(url, sha, size, "b-storm", duration_s=1, priority="emergency")
    alert["play"].update(repeat={"times": 3, "interval_s": 1}, volume=100)
    observer.send("c-cmd", alert)
    await wait_for(
        lambda: sum(1 for r in observer.of(Channel.REPORT) if r["command_id"] == alert["id"]) == 3,
        what="three play reports",
    )
    reports = [r for r in observer.of(Channel.REPORT) if r["command_id"] == alert["id"]]
    assert [(r["status"], r["repetition"], r["repetitions"]) for r in reports] == [
        ("played", 1, 3),
        ("played", 2, 3),
        ("played", 3, 3),
    ]
    assert [(p.broadcast_id, p.completed, p.volume) for p in player.log] == [("b-storm", True, 100)] * 3
    assert agent.state.is_done(alert["id"]) and alert["id"] not in agent.state.progress
    # The cluster's own level is back for what plays next.
    url2, sha2, size2 = audio_server.add("after.mp3", b"C" * 300)
    after = play(url2, sha2, size2, "b-after", duration_s=0.5)
    observer.send("c-cmd", after)
    await wait_for(lambda: observer.report_for(after["id"]), what="next play")
    assert player.log[-1].volume == agent.volume != 100


async def test_a_stop_between_repeats_ends_them(agent_on_broker, audio_server):
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("fire.mp3", b"F" * 700)
    alert = play(url, sha, size, "b-fire", duration_s=1, priority="emergency")
    alert["play"]["repeat"] = {"times": 5, "interval_s": 600}
    observer.send("c-cmd", alert)
    await wait_for(lambda: observer.report_for(alert["id"]), what="first play")
    stop = command("stop")
    observer.send("c-cmd", stop)
    await wait_for(
        lambda: any(r["status"] == "stopped" for r in observer.of(Channel.REPORT) if r["command_id"] == alert["id"]),
        what="the repeats stopped",
    )
    assert observer.report_for(stop["id"])["status"] == "stopped"
    assert len(player.log) == 1 and agent.state.is_done(alert["id"])


async def test_amplifier_held_off_cuts_the_play_refuses_even_emergencies_and_survives_a_restart(
    agent_on_broker, audio_server
):
    agent, player, observer, http = agent_on_broker
    url, sha, size = audio_server.add("long-amp.mp3", b"L" * 3000)
    ordinary = play(url, sha, size, "b-long", duration_s=300)  # 30 s at speed 10
    observer.send("c-cmd", ordinary)
    await wait_for(lambda: agent.playing == "b-long", what="ordinary broadcast playing")

    off = command("amplifier", amplifier="off")
    observer.send("c-cmd", off)
    await wait_for(lambda: observer.report_for(off["id"]) and observer.report_for(ordinary["id"]), what="reports")
    assert observer.report_for(off["id"])["status"] == "applied"
    cut = observer.report_for(ordinary["id"])
    assert cut["status"] == "stopped" and cut["played_s"] < 300
    await wait_for(lambda: any(h["amplifier"] == "off" for h in observer.of(Channel.HEARTBEAT)), what="off in beat")

    alarm_url, alarm_sha, alarm_size = audio_server.add("alarm-amp.mp3", b"A" * 900)
    alarm = play(alarm_url, alarm_sha, alarm_size, "b-storm", duration_s=1, priority="emergency")
    observer.send("c-cmd", alarm)
    await wait_for(lambda: observer.report_for(alarm["id"]), what="emergency report")
    refused = observer.report_for(alarm["id"])
    assert refused["status"] == "failed" and refused["reason"] == "amplifier held off by a technician's command"
    assert [(p.broadcast_id, p.completed) for p in player.log] == [("b-long", False)]  # nothing played since

    # Restart from the same disk: still held off, and the heartbeat says so.
    await agent.stop()
    again = Agent(agent.config, http=http, player=player)
    beats = len(observer.of(Channel.HEARTBEAT))
    await again.start()
    try:
        await wait_for(lambda: len(observer.of(Channel.HEARTBEAT)) > beats, what="heartbeat after restart")
        assert observer.of(Channel.HEARTBEAT)[-1]["amplifier"] == "off"
        on = command("amplifier", amplifier="on")
        observer.send("c-cmd", on)
        await wait_for(lambda: observer.report_for(on["id"]), what="back in service")
        assert observer.report_for(on["id"])["status"] == "applied"
        after = play(alarm_url, alarm_sha, alarm_size, "b-after", duration_s=0.5)
        observer.send("c-cmd", after)
        await wait_for(lambda: observer.report_for(after["id"]), what="play after 'on'")
        assert observer.report_for(after["id"])["status"] == "played"
        assert player.log[-1].broadcast_id == "b-after" and player.log[-1].completed
        assert observer.of(Channel.HEARTBEAT)[-1]["amplifier"] == "on"
    finally:
        await again.stop()


async def test_the_amplifier_relay_command_runs_at_start_and_on_each_switch(tmp_path, topic_root):
    relay = tmp_path / "relay.log"
    observer = Observer(topic_root)
    config = unsigned_config(
        cluster_id="c-relay",
        data_dir=tmp_path / "box",
        topic_root=topic_root,
        heartbeat_interval_s=30,
        amplifier_command=f"sh -c 'echo {{state}} {{bit}} >> {relay}; test {{state}} = on || test ! -e {tmp_path}/jam'",
    )
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=SimulatedPlayer(clock=SystemClock(), cluster_id="c-relay"))
        await agent.start()
        try:
            await asyncio.wait_for(agent.subscribed.wait(), 10)
            await wait_for(lambda: relay.exists() and relay.read_text() == "on 1\n", what="relay set at start")
            off = command("amplifier", amplifier="off")
            observer.send("c-relay", off)
            await wait_for(lambda: observer.report_for(off["id"]), what="off applied")
            assert observer.report_for(off["id"])["status"] == "applied"
            assert relay.read_text() == "on 1\noff 0\n"

            # A relay that fails: the command is reported failed, the hold is kept, the heartbeat says why.
            (tmp_path / "jam").touch()
            again = command("amplifier", amplifier="off")
            observer.send("c-relay", again)
            await wait_for(lambda: observer.report_for(again["id"]), what="failed switch")
            failed = observer.report_for(again["id"])
            assert failed["status"] == "failed" and "exited with 1" in failed["reason"]
            assert agent.state.amplifier_off
            await wait_for(
                lambda: any("amplifier command" in (h["last_error"] or "") for h in observer.of(Channel.HEARTBEAT)),
                what="the failure in the heartbeat",
            )
        finally:
            await agent.stop()
    observer.close()


@pytest.mark.parametrize(
    ("text", "problem"),
    [("gpioset chip 17={level}", "can be filled"), ("relay 'on", "cannot split")],
)
def test_a_bad_amplifier_command_is_refused_at_load(tmp_path, text, problem):
    from speaker_agent.config import AgentConfig, ConfigError

    with pytest.raises(ConfigError, match="amplifier_command") as caught:
        AgentConfig(cluster_id="c-1", data_dir=tmp_path, amplifier_command=text)
    assert problem in str(caught.value)


def stop_broadcast(broadcast_id: str) -> dict:
    return command("stop", stop={"broadcast_id": broadcast_id})


async def test_a_stop_of_one_broadcast_leaves_the_others_alone(agent_on_broker, audio_server):
    """Stopping the waiting one does not cut what plays; stopping the playing one lets the next play."""
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("sb-long.mp3", b"L" * 3000)
    playing = play(url, sha, size, "b-playing", duration_s=300)  # 30 s at speed 10
    waiting = play(url, sha, size, "b-waiting", duration_s=1)
    after = play(url, sha, size, "b-after", duration_s=1)
    observer.send("c-cmd", playing)
    await wait_for(lambda: agent.playing == "b-playing", what="first broadcast playing")
    observer.send("c-cmd", waiting)
    observer.send("c-cmd", after)
    await wait_for(lambda: len(agent._plays) == 3, what="two broadcasts waiting for the speaker")

    first = stop_broadcast("b-waiting")
    observer.send("c-cmd", first)
    await wait_for(lambda: observer.report_for(waiting["id"]), what="the waiting one stopped")
    assert observer.report_for(waiting["id"])["status"] == "stopped"
    assert observer.report_for(waiting["id"])["reason"] == "broadcast stopped by the server before it played"
    assert observer.report_for(first["id"])["reason"] == "stopped broadcast b-waiting"
    assert agent.playing == "b-playing" and observer.report_for(playing["id"]) is None  # not cut

    second = stop_broadcast("b-playing")
    observer.send("c-cmd", second)
    await wait_for(lambda: observer.report_for(after["id"]), what="the next one played")
    cut = observer.report_for(playing["id"])
    assert (cut["status"], cut["reason"]) == ("stopped", "interrupted") and cut["played_s"] < 300
    assert observer.report_for(after["id"])["status"] == "played"
    assert [(p.broadcast_id, p.completed) for p in player.log] == [("b-playing", False), ("b-after", True)]
    assert all(agent.state.is_done(c["id"]) for c in (playing, waiting, after, first, second))

    unknown = stop_broadcast("b-elsewhere")
    observer.send("c-cmd", unknown)
    await wait_for(lambda: observer.report_for(unknown["id"]), what="stop of a broadcast it never had")
    assert observer.report_for(unknown["id"])["reason"] == "broadcast b-elsewhere not here"


async def test_a_stop_reaches_a_broadcast_waiting_for_its_time_and_one_between_repeats(agent_on_broker, audio_server):
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("sb-later.mp3", b"T" * 900)
    later = play(url, sha, size, "b-later", duration_s=1)
    later["play"]["start_at"] = isoformat(datetime.now(UTC) + timedelta(seconds=40))
    repeating = play(url, sha, size, "b-repeating", duration_s=1, priority="emergency")
    repeating["play"]["repeat"] = {"times": 5, "interval_s": 600}
    observer.send("c-cmd", later)
    observer.send("c-cmd", repeating)
    await wait_for(lambda: observer.report_for(repeating["id"]), what="the first of the repeats")
    await wait_for(lambda: agent.cache.has(sha) and len(agent._plays) == 2, what="both in hand")

    for broadcast in ("b-later", "b-repeating"):
        observer.send("c-cmd", stop_broadcast(broadcast))
    await wait_for(
        lambda: (
            observer.report_for(later["id"])
            and any(r["status"] == "stopped" for r in observer.of(Channel.REPORT) if r["command_id"] == repeating["id"])
        ),
        what="both stopped",
    )
    assert observer.report_for(later["id"])["reason"] == "broadcast stopped by the server before it played"
    final = [r for r in observer.of(Channel.REPORT) if r["command_id"] == repeating["id"]][-1]
    assert (final["status"], final["reason"]) == ("stopped", "stopped after 1 of 5 plays")
    assert [p.broadcast_id for p in player.log] == ["b-repeating"]
    assert agent.state.is_done(later["id"]) and agent.state.is_done(repeating["id"]) and not agent._plays


async def test_a_play_that_arrives_after_its_broadcast_was_stopped_never_plays(agent_on_broker, audio_server):
    """A dispatch still publishing when the server stopped the broadcast: the stop may arrive first."""
    agent, player, observer, _ = agent_on_broker
    url, sha, size = audio_server.add("sb-late.mp3", b"S" * 900)
    stop = stop_broadcast("b-late")
    observer.send("c-cmd", stop)
    await wait_for(lambda: observer.report_for(stop["id"]), what="the stop")
    assert observer.report_for(stop["id"])["reason"] == "broadcast b-late not here"

    late = play(url, sha, size, "b-late", duration_s=1)
    other = play(url, sha, size, "b-other", duration_s=1)
    observer.send("c-cmd", late)
    observer.send("c-cmd", other)
    await wait_for(lambda: observer.report_for(late["id"]) and observer.report_for(other["id"]), what="both reports")
    assert observer.report_for(late["id"])["status"] == "stopped"
    assert observer.report_for(late["id"])["reason"] == "broadcast stopped by the server before it played"
    assert observer.report_for(late["id"])["broadcast_id"] == "b-late"
    assert observer.report_for(other["id"])["status"] == "played"
    assert [p.broadcast_id for p in player.log] == ["b-other"]
    # Kept on disk until the stop expires: a restarted agent drops a late play of it too.
    assert AgentState(agent.state.path).was_stopped("b-late", datetime.now(UTC).timestamp())
