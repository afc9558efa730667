"""Signed commands on the real broker: a real agent refuses unsigned (mosquitto_pub), foreign-signed,
expired, replayed and tampered commands, reports each and plays none; keys rotate over the air."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from broadcast_server.messaging.mqtt_bus import MqttBus
from broadcast_server.signing.command_signer import ServerCommandSigner
from broadcast_server.signing.key_push import keys_command
from broadcast_server.signing.keyring import load_keyring, save_keyring
from mqtt_contract import Channel, Topics, encode
from mqtt_contract.signing import CommandSigner
from speaker_agent import Agent, AgentConfig
from speaker_agent.clock import SystemClock, isoformat
from speaker_agent.player import SimulatedPlayer

from .test_agent_on_broker import BROKER, Observer, play_command, wait_for

pytestmark = pytest.mark.broker


def _ping() -> dict:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "ping",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=60)),
    }


class Cluster:
    """A real Agent with a simulated player, trusting the given public keys."""

    def __init__(self, tmp_path, topic_root: str, trusted: list[str], http: httpx.AsyncClient) -> None:
        self.clock = SystemClock()
        self.player = SimulatedPlayer(clock=self.clock, cluster_id="c-1", speed=20)
        self.config = AgentConfig(
            cluster_id="c-1",
            data_dir=tmp_path / "agent",
            topic_root=topic_root,
            heartbeat_interval_s=0.3,
            trusted_keys=" ".join(trusted),
        )
        self.http = http
        self.agent: Agent | None = None

    async def start(self) -> Agent:
        self.agent = Agent(self.config, http=self.http, player=self.player, clock=self.clock)
        await self.agent.start()
        await asyncio.wait_for(self.agent.connected.wait(), 10)
        await asyncio.wait_for(self.agent.subscribed.wait(), 10)
        return self.agent


def _reports_about(observer: Observer, needle: str) -> list[dict]:
    return [r for r in observer.of(Channel.REPORT) if needle in (r.get("reason") or "") or r["command_id"] == needle]


async def test_agent_refuses_and_reports_what_the_server_did_not_sign(tmp_path, topic_root, audio_server) -> None:
    server, stranger = CommandSigner.generate(), CommandSigner.generate()
    topic = Topics(topic_root).for_cluster("c-1", Channel.COMMAND)
    url, sha, size = audio_server.add("a.mp3", b"ID3" + bytes(4000))
    other_url, other_sha, other_size = audio_server.add("b.mp3", b"ID3" + bytes(5000))
    observer = Observer(topic_root)
    async with httpx.AsyncClient() as http:
        cluster = Cluster(tmp_path, topic_root, [server.public_key], http)
        agent = await cluster.start()
        try:
            # 1. Anyone on the broker, with the mosquitto_pub binary: an unsigned command.
            unsigned = play_command(url, sha, size)
            subprocess.run(
                [
                    "mosquitto_pub",
                    "-h",
                    BROKER[0],
                    "-p",
                    str(BROKER[1]),
                    "-q",
                    "1",
                    "-t",
                    topic,
                    "-m",
                    json.dumps(unsigned),
                ],
                check=True,
                timeout=10,
            )
            # 2. Signed, but with a key the agent does not trust.
            foreign = stranger.sign(play_command(url, sha, size))
            observer.publish(topic, encode(Channel.COMMAND, foreign))
            # 3. Signed by the server, the audio hash changed afterwards (another real file).
            tampered = server.sign(play_command(url, sha, size))
            tampered["play"]["audio"].update(url=other_url, sha256=other_sha, size_bytes=other_size)
            observer.publish(topic, encode(Channel.COMMAND, tampered))
            # 4. Signed by the server but expired.
            expired = server.sign(play_command(url, sha, size, expires_in=-5))
            observer.publish(topic, encode(Channel.COMMAND, expired))
            for needle in (unsigned["id"], foreign["id"], tampered["id"], expired["id"]):
                await wait_for(lambda n=needle: _reports_about(observer, n))

            (r1,) = _reports_about(observer, unsigned["id"])
            assert r1["status"] == "rejected" and r1["reason"].startswith("signature: missing (unsigned command)")
            # An unproven id settles nothing: the report goes under a generated id that names the claimed one.
            assert r1["command_id"].startswith("refused-") and unsigned["id"] in r1["reason"]
            (r2,) = _reports_about(observer, foreign["id"])
            assert r2["status"] == "rejected" and f"signature: unknown key id {stranger.kid!r}" in r2["reason"]
            (r3,) = _reports_about(observer, tampered["id"])
            assert r3["status"] == "rejected" and "signature: does not match" in r3["reason"]
            (r4,) = _reports_about(observer, expired["id"])  # authentic: reported under its own id
            assert r4["status"] == "missed" and r4["reason"].startswith("command expired at")

            # 5. A signed command plays; the same bytes published again (a new MQTT message) are a replay.
            good = server.sign(play_command(url, sha, size, broadcast_id="b-good"))
            payload = encode(Channel.COMMAND, good)
            observer.publish(topic, payload)
            await wait_for(lambda: any(r["status"] == "played" for r in _reports_about(observer, good["id"])))
            observer.publish(topic, payload)
            await wait_for(lambda: any("replay" in (r.get("reason") or "") for r in observer.of(Channel.REPORT)))
            (replay,) = [r for r in observer.of(Channel.REPORT) if "replay" in (r.get("reason") or "")]
            assert replay["status"] == "rejected" and replay["command_id"].startswith("refused-")
            assert replay["reason"].startswith(f"replay: seq {good['seq']} was already received")

            # Nothing but the signed command reached the loudspeaker, once; the refusals show in the heartbeat.
            assert [(p.broadcast_id, p.sha256) for p in cluster.player.log] == [("b-good", sha)]
            await wait_for(lambda: "refused 4 command(s)" in (observer.of(Channel.HEARTBEAT)[-1]["last_error"] or ""))
            assert agent.refused == 4
            assert unsigned["id"] not in agent.state.pending and not agent.state.is_known(unsigned["id"])
        finally:
            await agent.stop()
    observer.close()


async def test_key_rotation_over_the_air_with_a_real_agent(tmp_path, topic_root) -> None:
    key_file = tmp_path / "server" / "signing-keys.json"
    signer = ServerCommandSigner(key_file)  # made at first use, mode 0600
    assert key_file.stat().st_mode & 0o777 == 0o600
    first = load_keyring(key_file)
    old_key = CommandSigner(first.active.private_key)
    bus = MqttBus(*BROKER, topic_root=topic_root, signer=signer)
    bus.start()
    topic = Topics(topic_root).for_cluster("c-1", Channel.COMMAND)
    observer = Observer(topic_root)

    def commands_sent() -> list[dict]:
        return [json.loads(p) for t, p, _ in observer.messages if t == topic]

    async def outcome(command: dict) -> dict:
        await wait_for(lambda: _reports_about(observer, command["id"]))
        return _reports_about(observer, command["id"])[0]

    async def send(command: dict) -> dict:
        assert await asyncio.to_thread(bus.publish_commands, [("c-1", command)]) == {command["id"]}
        return await outcome(command)

    async with httpx.AsyncClient() as http:
        cluster = Cluster(tmp_path, topic_root, first.trusted_public_keys, http)
        agent = await cluster.start()
        try:
            assert (await send(_ping()))["status"] == "pong"

            # Step 1: a next key, trusted by the agent through a `keys` command signed with the current key.
            added = first.with_next_key(datetime.now(UTC))
            save_keyring(key_file, added)
            new_kid = next(k.kid for k in added.keys if k.state == "next")
            report = await send(keys_command(added.trusted_public_keys, datetime.now(UTC)))
            assert report["status"] == "applied" and new_kid in report["reason"]
            assert commands_sent()[-1]["sig"]["kid"] == first.active.kid

            # Step 2: switch signing; the running signer re-reads the key file.
            save_keyring(key_file, added.switched())
            assert (await send(_ping()))["status"] == "pong"
            assert commands_sent()[-1]["sig"]["kid"] == new_kid

            # Step 3: retire the old key; a command signed with it is refused from then on.
            retired = added.switched().retired()
            save_keyring(key_file, retired)
            report = await send(keys_command(retired.trusted_public_keys, datetime.now(UTC)))
            assert report["status"] == "applied" and report["reason"] == f"trusted keys: {new_kid}"
            stale = old_key.sign(_ping())
            observer.publish(topic, encode(Channel.COMMAND, stale))
            refused = await outcome(stale)
            assert refused["status"] == "rejected" and f"unknown key id {first.active.kid!r}" in refused["reason"]

            # A key set that leaves out its own signing key would lock the server out: refused.
            lockout = await send(keys_command([CommandSigner.generate().public_key], datetime.now(UTC)))
            assert lockout["status"] == "rejected" and "leaves out the signing key" in lockout["reason"]
        finally:
            await agent.stop()

        # After a restart the pushed set still rules, though the configuration names only the old key.
        agent = await cluster.start()
        try:
            assert (await send(_ping()))["status"] == "pong"
            stale = old_key.sign(_ping())
            observer.publish(topic, encode(Channel.COMMAND, stale))
            assert (await outcome(stale))["status"] == "rejected"
        finally:
            await agent.stop()
    bus.stop()
    observer.close()


async def test_a_box_without_a_trusted_key_plays_nothing_and_says_why(tmp_path, topic_root, audio_server) -> None:
    """Not enrolled, no trusted_keys: even a command the server signed is refused (the box cannot tell it from
    a forgery); each refusal is reported under a generated id, and the heartbeat says how to cure it."""
    from speaker_agent.command_auth import NO_TRUSTED_KEY

    server = CommandSigner.generate()
    topic = Topics(topic_root).for_cluster("c-1", Channel.COMMAND)
    url, sha, size = audio_server.add("a.mp3", b"ID3" + bytes(4000))
    observer = Observer(topic_root)
    async with httpx.AsyncClient() as http:
        cluster = Cluster(tmp_path, topic_root, [], http)
        agent = await cluster.start()
        try:
            await wait_for(lambda: observer.of(Channel.HEARTBEAT))
            assert observer.of(Channel.HEARTBEAT)[-1]["last_error"] == NO_TRUSTED_KEY  # before any command
            signed = server.sign(play_command(url, sha, size))
            unsigned = play_command(url, sha, size)
            for command in (signed, unsigned):
                observer.publish(topic, encode(Channel.COMMAND, command))
            for command in (signed, unsigned):
                await wait_for(lambda c=command: _reports_about(observer, c["id"]))
                (report,) = _reports_about(observer, command["id"])
                assert report["status"] == "rejected" and report["reason"].startswith(NO_TRUSTED_KEY)
                assert report["command_id"].startswith("refused-")
            await wait_for(lambda: "refused 2 command(s)" in (observer.of(Channel.HEARTBEAT)[-1]["last_error"] or ""))
            assert cluster.player.log == [] and not agent.cache.has(sha)  # nothing fetched, nothing played
        finally:
            await agent.stop()
    observer.close()
