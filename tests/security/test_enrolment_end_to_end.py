"""Enrolment end to end, as a technician and a receiver box do it, against a real mosquitto and `bcast server`.

write-files → broker starts → server-password (SIGHUP) → `bcast server` connects with its account →
`bcast broker enrol-token` → `bcast agent enrol` (POST /api/v1/enrol) → the agent connects with its new
credentials and the server sees it online → the token cannot be reused → `bcast broker revoke` → the
broker drops the cluster and refuses it from then on.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bcast.broker import free_port
from bcast.cli import app
from broadcast_server.broker_auth.password_hash import new_password
from broadcast_server.signing.keyring import load_or_create_keyring
from speaker_agent import Agent, AgentConfig
from speaker_agent.clock import SystemClock
from speaker_agent.enrol import credentials_path
from speaker_agent.player import SimulatedPlayer

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TOKEN_LINE = re.compile(r"^[A-Za-z0-9_-]{32}$", re.MULTILINE)


def _cli(env: dict[str, str], *args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), env=env, input=input)


def _text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _wait_for_server(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()["mqtt"]:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(process.stdout.read().decode(errors="replace")[-3000:] if process.stdout else "server died")
        time.sleep(0.2)


async def _until(predicate, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout_s} s")
        await asyncio.sleep(0.1)


async def test_enrol_connect_reuse_revoke(tmp_path, sqlite_fleet, mosquitto_factory, probes, caplog) -> None:
    from bcast.demo import admin_headers

    database_url, engine, _ = sqlite_fleet
    password_file, acl_file = tmp_path / "broker" / "passwd", tmp_path / "broker" / "acl"
    env = {
        "BCAST_DATABASE_URL": database_url,
        "BCAST_BROKER_PASSWORD_FILE": str(password_file),
        "BCAST_BROKER_ACL_FILE": str(acl_file),
        "BCAST_AUDIO_DIR": str(tmp_path / "audio"),
    }
    written = _cli(env, "broker", "write-files", "--no-reload")
    assert written.exit_code == 0, written.output
    assert password_file.read_text() == "" and "user " not in acl_file.read_text()
    broker = mosquitto_factory(password_file, acl_file)
    env["BCAST_BROKER_PID_FILE"] = str(broker.pid_file)
    assert not probes(broker.port, "bcast-server", "anything").accepted

    server_password = new_password()
    set_password = _cli(env, "broker", "server-password", "--password-stdin", input=server_password + "\n")
    assert set_password.exit_code == 0, set_password.output
    assert "đã nạp lại máy chủ MQTT" in _text(set_password) and server_password not in set_password.output

    async def accepted(username: str, password: str) -> bool:
        probe = await asyncio.to_thread(probes, broker.port, username, password)
        return probe.accepted

    deadline = time.monotonic() + 20
    while not await accepted("bcast-server", server_password):  # the reload is asynchronous
        assert time.monotonic() < deadline, broker.log()[-2000:]
        await asyncio.sleep(0.1)

    http_port = free_port()
    server_env = dict(
        os.environ,
        **env,
        BCAST_MQTT_PORT=str(broker.port),
        BCAST_MQTT_USERNAME="bcast-server",
        BCAST_MQTT_PASSWORD=server_password,
        BCAST_PUBLIC_URL=f"http://127.0.0.1:{http_port}",
        BCAST_SIGNING_KEY_FILE=str(tmp_path / "signing-keys.json"),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "bcast", "server", "--port", str(http_port)],
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    agent = None
    try:
        await asyncio.to_thread(_wait_for_server, http_port, server)

        issued = _cli(env, "broker", "enrol-token", "A", "--ttl-hours", "2")
        assert issued.exit_code == 0, issued.output
        [token] = TOKEN_LINE.findall(issued.output)

        data_dir = tmp_path / "agent-A"
        enrol_args = ["agent", "enrol", "--server", f"http://127.0.0.1:{http_port}", "--cluster", "A"]
        enrolled = await asyncio.to_thread(_cli, env, *enrol_args, "--token", token, "--data-dir", str(data_dir))
        assert enrolled.exit_code == 0, enrolled.output
        stored = credentials_path(data_dir)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        reused = await asyncio.to_thread(_cli, env, *enrol_args, "--token", token, "--data-dir", str(data_dir / "x"))
        assert reused.exit_code == 1 and "already been used" in _text(reused)
        assert not (data_dir / "x" / stored.name).exists()

        config_file = tmp_path / "agent.toml"
        config_file.write_text(
            f'[agent]\ncluster_id = "A"\ndata_dir = "{data_dir}"\nmqtt_port = {broker.port}\n'
            'heartbeat_interval_s = 1.0\nplayer = "simulated"\n'
        )
        config = AgentConfig.load(config_file, env={})
        assert config.mqtt_username == "A" and config.mqtt_password
        # The server's signing key came with the account: the box obeys only this server from the start.
        server_keys = load_or_create_keyring(Path(server_env["BCAST_SIGNING_KEY_FILE"])).trusted_public_keys
        assert config.trusted_public_keys == tuple(server_keys) and server_keys
        assert config.mqtt_password not in password_file.read_text()

        clock = SystemClock()
        async with httpx.AsyncClient() as http:
            agent = Agent(config, http=http, player=SimulatedPlayer(clock=clock, cluster_id="A"), clock=clock)
            await agent.start()
            await asyncio.wait_for(agent.connected.wait(), 20)
            headers = admin_headers(engine)

            def online() -> bool | None:
                clusters = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/clusters", headers=headers, timeout=5)
                return {c["id"]: c["online"] for c in clusters.json()}.get("A")

            deadline = time.monotonic() + 20
            while not await asyncio.to_thread(online):  # the server ingested the agent's own status
                assert time.monotonic() < deadline, "the server never saw cluster A online"
                await asyncio.sleep(0.2)

            revoked = _cli(env, "broker", "revoke", "A")
            assert revoked.exit_code == 0, revoked.output
            assert "đã nạp lại máy chủ MQTT" in _text(revoked)
            assert [line.split(":")[0] for line in password_file.read_text().splitlines()] == ["bcast-server"]
            assert "user A\n" not in acl_file.read_text()
            # The broker drops the live connection at reload and refuses every new one.
            await _until(lambda: not agent.connected.is_set(), "the revoked agent was disconnected")
            assert not await accepted("A", config.mqtt_password)
            await _until(
                lambda: any("connection refused: Not authorized" in r.getMessage() for r in caplog.records),
                "the agent's reconnect was refused",
            )
            assert not agent.connected.is_set()
            await agent.stop()
            agent = None
    finally:
        if agent is not None:
            await agent.stop()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        # Shown by pytest only when the test failed: what the server and the broker said.
        server_output = server.stdout.read().decode(errors="replace") if server.stdout else ""
        print("--- bcast server output (tail) ---", server_output[-6000:], sep="\n")
        print("--- mosquitto log (tail) ---", broker.log()[-4000:], sep="\n")
