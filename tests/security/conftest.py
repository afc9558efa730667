"""Fixtures for broker security: a mosquitto of our own with password, ACL and optional TLS, and MQTT 5 probes.

Each broker runs on a free loopback port with ``allow_anonymous false`` and is terminated after the test.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bcast.broker import free_port, wait_for_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
WAIT_S = 10.0


def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_S, what: str = "condition") -> None:
    """Poll `predicate` until true; fail after `timeout_s` (a bound, never a measured duration)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        time.sleep(0.02)


@dataclass
class SecuredMosquitto:
    """A mosquitto process reading `password_file` and `acl_file`; with `tls` its listener speaks TLS only."""

    workdir: Path
    password_file: Path
    acl_file: Path
    tls: dict[str, Path] | None = None  # cafile, certfile, keyfile; require_certificate when "require" is set
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.workdir / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> SecuredMosquitto:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            f"pid_file {self.pid_file}",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # mosquitto 2 reads the files after dropping root; tmp_path is root's only
        if self.tls:
            lines += [
                f"cafile {self.tls['cafile']}",
                f"certfile {self.tls['certfile']}",
                f"keyfile {self.tls['keyfile']}",
            ]
            if self.tls.get("require"):
                lines += ["require_certificate true"]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port("127.0.0.1", self.port)
            wait_until(lambda: self.pid_file.exists() and self.pid_file.read_text().strip(), what="pid file")
        except BaseException:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., SecuredMosquitto]]:
    """Start secured brokers inside the test; every one is terminated afterwards."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    started: list[SecuredMosquitto] = []

    def start(password_file: Path, acl_file: Path, *, tls: dict[str, Path] | None = None) -> SecuredMosquitto:
        workdir = tmp_path / f"mosquitto-{len(started)}"
        workdir.mkdir()
        broker = SecuredMosquitto(workdir, password_file, acl_file, tls)
        started.append(broker)
        return broker.start()

    try:
        yield start
    finally:
        for broker in started:
            broker.stop()


class Probe:
    """A paho MQTT 5 client on its own thread that records CONNACK, PUBACK and SUBACK reason codes and messages."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_context is not None:
            self.client.tls_set_context(tls_context)
        self.connack: mqtt.ReasonCode | None = None
        self.disconnected = threading.Event()
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(mid, [r.value for r in rcs])
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        wait_until(lambda: self.connack is not None or self.disconnected.is_set(), what="CONNACK")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason_code, properties) -> None:
        self.connack = reason_code

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_until(lambda: info.mid in self.pubacks, what=f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe at QoS 1 and return the SUBACK reason codes."""
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.subacks, what=f"SUBACK for {topic}")
        return self.subacks[mid]

    def received(self, topic: str) -> list[bytes]:
        return [payload for t, payload in list(self.messages) if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[Callable[..., Probe]]:
    """Open MQTT 5 probes; all are closed after the test."""
    opened: list[Probe] = []

    def open_probe(*args, **kwargs) -> Probe:
        probe = Probe(*args, **kwargs)
        opened.append(probe)
        return probe

    try:
        yield open_probe
    finally:
        for probe in opened:
            probe.close()


@pytest.fixture
def until() -> Callable[..., None]:
    """The bounded polling helper, as a fixture (test modules cannot import conftest in importlib mode)."""
    return wait_until


@dataclass(frozen=True)
class Fleet:
    """Two communes with one cluster each: `a` (unit ids in `units`) and `b`."""

    units: dict[str, int]


@pytest.fixture
def fleet(engine) -> Fleet:
    """Clusters "A" (village of commune Xã Một) and "B" (village of Xã Hai) in a migrated database."""
    return make_fleet(engine)


@pytest.fixture
def sqlite_fleet(tmp_path: Path):
    """(database URL, engine, Fleet) of a SQLite file another process can open too."""
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bcast.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        yield url, engine, make_fleet(engine)
    finally:
        engine.dispose()


def make_fleet(engine) -> Fleet:
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import AdminUnit, Cluster

    with session_scope(engine) as session:
        province = AdminUnit(name="Quảng Ngãi", level="province")
        session.add(province)
        session.flush()
        units = {"province": province.id}
        for commune, village, cluster in (("Xã Một", "Thôn 1", "A"), ("Xã Hai", "Thôn 2", "B")):
            c = AdminUnit(parent_id=province.id, name=commune, level="commune")
            session.add(c)
            session.flush()
            v = AdminUnit(parent_id=c.id, name=village, level="village")
            session.add(v)
            session.flush()
            session.add(Cluster(id=cluster, unit_id=v.id, lat=15.1, lon=108.8))
            units[commune] = c.id
    return Fleet(units)
