"""A NATS server with its MQTT listener on loopback: the second broker the MQTT contract is tested on.

NATS 2.9 serves MQTT 3.1.1 on top of JetStream (sessions, retained messages and QoS 1 live in
JetStream streams), so the config needs a server name and a JetStream store. QoS 2 is refused.
Same interface as `LocalBroker`: `host`, `port` (the MQTT port), `kind`, a context manager.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bcast.broker import BrokerError, free_port, stop_process, wait_for_port


def nats_server_binary() -> str | None:
    """Where nats-server is installed (Debian puts it in /usr/sbin), or None."""
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server") if Path(p).exists()), None
    )


def nats_mqtt_config(*, host: str, client_port: int, mqtt_port: int, store_dir: Path, log_file: Path) -> str:
    """The nats-server configuration: loopback listeners, JetStream on disk, MQTT enabled."""
    return (
        "server_name: bcast-nats\n"
        f"listen: {host}:{client_port}\n"
        f'jetstream {{ store_dir: "{store_dir}" }}\n'
        # max_ack_pending bounds the QoS 1 messages in flight to one MQTT subscription; the server's
        # wildcard subscriptions receive every cluster's reports, as in mosquitto's max_inflight_messages.
        f"mqtt {{ listen: {host}:{mqtt_port}\n  max_ack_pending: 1000\n}}\n"
        f'log_file: "{log_file}"\n'
    )


class NatsBroker:
    """A nats-server we launch with MQTT on a free loopback port; `stop()` removes its JetStream store."""

    kind = "nats"

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.client_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def log_file(self) -> Path | None:
        return Path(self._workdir.name) / "nats.log" if self._workdir else None

    def start(self) -> NatsBroker:
        binary = nats_server_binary()
        if binary is None:
            raise BrokerError("nats-server is not installed (apt-get install nats-server)")
        self._workdir = tempfile.TemporaryDirectory(prefix="bcast-nats-")
        workdir = Path(self._workdir.name)
        conf = workdir / "nats.conf"
        conf.write_text(
            nats_mqtt_config(
                host=self.host,
                client_port=self.client_port,
                mqtt_port=self.port,
                store_dir=workdir / "jetstream",
                log_file=workdir / "nats.log",
            )
        )
        # The log goes to a file, never to a pipe nobody reads.
        self._process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(self.host, self.port)
        except BrokerError:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            self.stop()
            raise BrokerError(f"nats-server did not open its MQTT port: {log}") from None
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, timeout_s=10)  # JetStream flushes its store on the way out
            self._process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        self.stop()
