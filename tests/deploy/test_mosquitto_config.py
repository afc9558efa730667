"""docker/mosquitto.conf and docker/mosquitto-run.sh on the real Mosquitto 2, with paths and ports moved to tmp.

Checks what compose.yaml relies on: no anonymous client on the cluster port, the health listener answers
the health check's exact command, and a rewritten password file is picked up without a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bcast.broker import free_port, wait_for_port

pytestmark = pytest.mark.broker

DOCKER = Path(__file__).resolve().parents[2] / "docker"
TOOLS = ("mosquitto", "mosquitto_passwd", "mosquitto_pub", "mosquitto_sub")


def mqtt_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=15)


def can_publish(port: int, *credentials: str) -> bool:
    login = ["-u", credentials[0], "-P", credentials[1]] if credentials else []
    return (
        mqtt_tool("mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *login, "-t", "probe", "-m", "x").returncode == 0
    )


@pytest.fixture
def broker_files(tmp_path: Path) -> Path:
    """The auth folder as `bcast broker write-files` leaves it: the server's account and its ACL."""
    if missing := [t for t in TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]:
        pytest.skip(f"not installed: {', '.join(missing)}")
    auth = tmp_path / "auth"
    auth.mkdir()
    assert (
        mqtt_tool("mosquitto_passwd", "-c", "-b", str(auth / "passwd"), "bcast-server", "server-secret-1234").returncode
        == 0
    )
    (auth / "acl").write_text("user bcast-server\ntopic readwrite bcast/#\n")
    return auth


def test_mosquitto_conf_refuses_anonymous_serves_health_and_reloads_accounts(tmp_path, broker_files):
    port, health_port = free_port(), free_port()
    conf = (DOCKER / "mosquitto.conf").read_text(encoding="utf-8")
    for production, here in [
        ("listener 1883\n", f"listener {port} 127.0.0.1\n"),
        ("listener 1880 127.0.0.1\n", f"listener {health_port} 127.0.0.1\n"),
        ("/mosquitto/auth/", f"{broker_files}/"),
        ("/mosquitto/config/health.acl", str(DOCKER / "health.acl")),
        ("/mosquitto/data/", f"{tmp_path / 'data'}/"),
        ("log_dest stdout", f"log_dest file {tmp_path / 'mosquitto.log'}"),
    ]:
        assert production in conf, production
        conf = conf.replace(production, here)
    if os.geteuid() == 0:
        conf += "user root\n"  # as root, mosquitto would switch to the 'mosquitto' user, who cannot read tmp_path
    (tmp_path / "data").mkdir()
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = {
        **os.environ,
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
        "MOSQUITTO_CONF": str(tmp_path / "mosquitto.conf"),
        "MOSQUITTO_AUTH_DIR": str(broker_files),
        "POLL_S": "0.2",
    }
    runner = subprocess.Popen(
        ["sh", str(DOCKER / "mosquitto-run.sh")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port("127.0.0.1", port)
        wait_for_port("127.0.0.1", health_port)
        assert not can_publish(port), "an anonymous client was accepted on the cluster port"
        assert not can_publish(port, "bcast-server", "wrong-password")
        assert can_publish(port, "bcast-server", "server-secret-1234")

        # The health check, as compose.yaml runs it (with this test's port).
        health = mqtt_tool(
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(health_port), "-t", "$SYS/broker/uptime", "-C", "1", "-W", "5"
        )
        assert health.returncode == 0 and "seconds" in health.stdout
        # The health listener's anonymous client reads nothing else: a retained command stays hidden from it.
        login = ["-u", "bcast-server", "-P", "server-secret-1234"]
        published = mqtt_tool(
            "mosquitto_pub", "-p", str(port), *login, "-t", "bcast/c-1/command", "-m", "x", "-r", "-q", "1"
        )
        assert published.returncode == 0
        seen_by_server = mqtt_tool("mosquitto_sub", "-p", str(port), *login, "-t", "bcast/#", "-C", "1", "-W", "5")
        assert seen_by_server.stdout.strip() == "x"
        seen_by_health = mqtt_tool("mosquitto_sub", "-p", str(health_port), "-t", "bcast/#", "-C", "1", "-W", "2")
        assert seen_by_health.stdout == ""

        # The server rewrites the password file (a cluster enrols): the runner reloads the broker.
        added = mqtt_tool("mosquitto_passwd", "-b", str(broker_files / "passwd"), "cluster-c-1", "cluster-secret-1234")
        assert added.returncode == 0
        deadline = time.monotonic() + 30
        while not can_publish(port, "cluster-c-1", "cluster-secret-1234"):
            assert time.monotonic() < deadline, "the new account was never accepted: no reload"
            time.sleep(0.2)
        assert runner.poll() is None
    finally:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(15) == 0
    assert not _listening(port)


def test_the_runner_refuses_to_start_without_the_broker_files(tmp_path):
    empty = tmp_path / "auth"
    empty.mkdir()
    env = {**os.environ, "MOSQUITTO_AUTH_DIR": str(empty), "MOSQUITTO_CONF": "/nonexistent"}
    done = subprocess.run(["sh", str(DOCKER / "mosquitto-run.sh")], env=env, capture_output=True, text=True, timeout=15)
    assert done.returncode == 1 and "bcast broker write-files" in done.stderr


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
