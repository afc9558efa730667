"""One real agent process: resident memory and CPU at rest and while playing, and MQTT bytes per day.

Run: .venv/bin/python -m bench.agent_footprint [--rest-s 20] [--play-s 20] [--heartbeats 30]

`bcast agent --config agent.toml` runs as a subprocess (simulated player: no sound card here) against a
fresh mosquitto (bcast.broker.LocalBroker) reached through a counting TCP proxy in this process, and a
small audio origin (firmware_sim.origin.AudioOrigin) serving an MP3 tone.
- footprint, default heartbeat interval: after it is online and has settled, VmRSS and CPU time
  (utime + stime from /proc/<pid>/stat) over `--rest-s`; then one signed play command of a `--play-s`
  tone: CPU over the time from the command to its `played` report, highest VmRSS sampled meanwhile, and
  VmHWM (the process's peak) at the end.
- traffic: a second agent process with heartbeats every second, so that many heartbeats fit in a short
  run. The proxy counts the bytes both ways (the MQTT packets: no TCP/IP headers) between two moments
  half an interval after a heartbeat, `--heartbeats` heartbeats apart; bytes per heartbeat x heartbeats
  a day at the default interval, plus one keepalive ping round (PINGREQ + PINGRESP, 4 bytes) per
  keepalive period in case nothing else was sent, is the daily figure. The bytes of connecting (CONNECT,
  SUBSCRIBE, the retained status, the first heartbeat and the acknowledgements) are given apart, per
  connection. A TCP/IP estimate adds 52 bytes (IPv4 + TCP with timestamps) per segment the proxy read,
  and as many acknowledgements.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.proc_stats import cpu_s, rss_kb  # noqa: E402

CLUSTER = "bench-agent"
HEADER_BYTES = 52  # IPv4 (20) + TCP with the timestamp option (32), per segment
PING_BYTES = 4  # PINGREQ and PINGRESP, two bytes each


class AgentBenchError(RuntimeError):
    """The agent did not come online, or did not play, in time."""


# ----------------------------------------------------------------------------------------- loopback services


class CountingProxy:
    """TCP proxy to the broker that counts bytes and reads in each direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.bytes = {"up": 0, "down": 0}
        self.reads = {"up": 0, "down": 0}
        self._server: asyncio.base_events.Server | None = None

    def snapshot(self) -> tuple[int, int]:
        """(bytes both ways, reads both ways) so far."""
        return self.bytes["up"] + self.bytes["down"], self.reads["up"] + self.reads["down"]

    async def start(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str) -> None:
            try:
                while chunk := await reader.read(65536):
                    self.bytes[way] += len(chunk)
                    self.reads[way] += 1
                    writer.write(chunk)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_r, broker_w, "up"), pump(broker_r, client_w, "down"))


class Loopback:
    """An event loop in a thread holding the counting proxy and the audio origin."""

    def __init__(self, broker_port: int, audio: bytes) -> None:
        from firmware_sim.origin import AudioOrigin

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-loopback", daemon=True)
        self.thread.start()
        self.proxy = self.call(CountingProxy(broker_port).start())
        self.origin = self.call(AudioOrigin().start())
        self.url, self.sha256, self.size = self.origin.add("tone.mp3", audio)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.proxy.close())
        self.call(self.origin.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Watcher:
    """A paho client on the broker itself (not through the proxy) that sees the agent's status, heartbeats, reports."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from mqtt_contract import Channel, Topics

        self.topics = Topics()
        self.online = threading.Event()
        self.heartbeats: list[float] = []
        self.reports: list[dict[str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{uuid.uuid4().hex[:8]}")
        channels = (Channel.STATUS, Channel.HEARTBEAT, Channel.REPORT)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(self.topics.for_cluster(CLUSTER, ch), 1) for ch in channels]
        )
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AgentBenchError("the watcher could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        channel = message.topic.rsplit("/", 1)[1]
        if channel == "heartbeat":
            self.heartbeats.append(time.monotonic())
        elif channel == "status" and message.payload:
            self.online.set() if json.loads(message.payload).get("state") == "online" else self.online.clear()
        elif channel == "report":
            self.reports.append(json.loads(message.payload))

    def publish_command(self, command: dict[str, Any]) -> None:
        from mqtt_contract import Channel, encode

        topic = self.topics.for_cluster(CLUSTER, Channel.COMMAND)
        self.client.publish(topic, encode(Channel.COMMAND, command), qos=1).wait_for_publish(10)

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AgentBenchError(f"the agent did not {what} within {timeout_s:.0f} s")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ----------------------------------------------------------------------------------------- agent process


def start_agent(folder: Path, port: int, trusted_key: str, heartbeat_s: float | None) -> subprocess.Popen[bytes]:
    """`python -m bcast agent --config` with a simulated player; the default heartbeat unless one is given."""
    data = folder / f"agent-{uuid.uuid4().hex[:6]}"
    lines = [
        f'cluster_id = "{CLUSTER}"',
        f'data_dir = "{data}"',
        'mqtt_host = "127.0.0.1"',
        f"mqtt_port = {port}",
        'player = "simulated"',
        f'trusted_keys = "{trusted_key}"',
        "cache_min_free_bytes = 0",
    ]
    if heartbeat_s is not None:
        lines.append(f"heartbeat_interval_s = {heartbeat_s}")
    config = folder / f"{data.name}.toml"
    config.write_text("\n".join(lines) + "\n")
    return subprocess.Popen(
        [sys.executable, "-m", "bcast", "agent", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_agent(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def play_command(signer: Any, loop: Loopback, duration_s: float) -> dict[str, Any]:
    from mqtt_contract.times import isoformat

    now = datetime.now(UTC)
    command = {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=600)),
        "play": {
            "broadcast_id": f"bench-{uuid.uuid4().hex[:8]}",
            "priority": "normal",
            "audio": {"url": loop.url, "sha256": loop.sha256, "size_bytes": loop.size, "duration_s": duration_s},
        },
    }
    return signer.sign(command)


def footprint(folder: Path, loop: Loopback, watcher: Watcher, signer: Any, rest_s: float, play_s: float) -> dict:
    """RSS and CPU of an agent at the default heartbeat: at rest, then while it plays one command."""
    agent = start_agent(folder, loop.proxy.port, signer.public_key, None)
    try:
        watcher.wait(watcher.online.is_set, 60, "come online")
        time.sleep(2.0)  # its first heartbeat and the subscription's acknowledgement are behind it
        cpu0, t0 = cpu_s(agent.pid), time.monotonic()
        rest_samples = [rss_kb(agent.pid)]
        while time.monotonic() - t0 < rest_s:
            time.sleep(0.5)
            rest_samples.append(rss_kb(agent.pid))
        rest_cpu = (cpu_s(agent.pid) - cpu0) / (time.monotonic() - t0)
        command = play_command(signer, loop, play_s)
        cpu1, t1 = cpu_s(agent.pid), time.monotonic()
        watcher.publish_command(command)
        play_samples = [rss_kb(agent.pid)]

        def played() -> bool:
            play_samples.append(rss_kb(agent.pid))
            return any(r.get("command_id") == command["id"] for r in watcher.reports)

        deadline = time.monotonic() + play_s + 60
        while not played():
            if time.monotonic() > deadline:
                raise AgentBenchError("the agent did not report the play")
            time.sleep(0.25)
        play_wall = time.monotonic() - t1
        play_cpu = (cpu_s(agent.pid) - cpu1) / play_wall
        status = next(r["status"] for r in watcher.reports if r.get("command_id") == command["id"])
        peak = rss_kb(agent.pid, "VmHWM")
    finally:
        stop_agent(agent)
    return {
        "rss_rest_mb": round(max(rest_samples) / 1024, 1),
        "cpu_rest_percent": round(100 * rest_cpu, 2),
        "rest_s": rest_s,
        "rss_playing_mb": round(max(play_samples) / 1024, 1),
        "cpu_playing_percent": round(100 * play_cpu, 2),
        "play_wall_s": round(play_wall, 2),
        "play_report": status,
        "rss_peak_mb": round(peak / 1024, 1),
    }


def traffic(folder: Path, loop: Loopback, watcher: Watcher, signer: Any, heartbeats: int) -> dict:
    """Bytes per heartbeat (agent at one heartbeat a second), scaled to a day at the default interval."""
    from speaker_agent.config import AgentConfig

    defaults = AgentConfig(cluster_id=CLUSTER, data_dir=folder)
    interval = 1.0
    watcher.online.clear()
    before = loop.proxy.snapshot()[0]
    agent = start_agent(folder, loop.proxy.port, signer.public_key, interval)
    try:
        watcher.wait(watcher.online.is_set, 60, "come online")
        seen = len(watcher.heartbeats)
        watcher.wait(lambda: len(watcher.heartbeats) >= seen + 2, 30, "send heartbeats")
        # Connecting ends with the first heartbeat; the second starts the steady state.
        mark = watcher.heartbeats[seen + 1] + interval / 2
        time.sleep(max(0.0, mark - time.monotonic()))
        bytes1, reads1 = loop.proxy.snapshot()
        connect_bytes = bytes1 - before
        target = seen + 2 + heartbeats
        watcher.wait(lambda: len(watcher.heartbeats) >= target, heartbeats * interval * 3 + 30, "keep its heartbeat")
        time.sleep(max(0.0, watcher.heartbeats[target - 1] + interval / 2 - time.monotonic()))
        bytes2, reads2 = loop.proxy.snapshot()
    finally:
        stop_agent(agent)
    per_heartbeat = (bytes2 - bytes1) / heartbeats
    segments = (reads2 - reads1) / heartbeats
    per_day_heartbeats = 86_400 / defaults.heartbeat_interval_s
    pings = 86_400 / defaults.keepalive_s * PING_BYTES
    per_day = per_heartbeat * per_day_heartbeats + pings
    return {
        "bytes_per_heartbeat": round(per_heartbeat, 1),
        "heartbeats_measured": heartbeats,
        "default_heartbeat_interval_s": defaults.heartbeat_interval_s,
        "keepalive_s": defaults.keepalive_s,
        "bytes_per_day": round(per_day),
        "connect_bytes": connect_bytes,
        "tcpip_bytes_per_day_estimate": round(per_day + 2 * segments * HEADER_BYTES * per_day_heartbeats),
    }


def run(
    *, rest_s: float = 20.0, play_s: float = 20.0, heartbeats: int = 30, note: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    from bcast.broker import LocalBroker
    from bench.fanout import tone
    from mqtt_contract.signing import CommandSigner

    signer = CommandSigner.generate()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp, LocalBroker() as broker:
        folder = Path(tmp)
        audio = tone(folder / "tone.mp3", play_s).read_bytes()
        loop = Loopback(broker.port, audio)
        watcher = Watcher(broker.port)
        try:
            note("agent: bộ nhớ và CPU khi nghỉ, khi phát")
            figures = footprint(folder, loop, watcher, signer, rest_s, play_s)
            note("agent: lưu lượng MQTT mỗi ngày")
            figures.update(traffic(folder, loop, watcher, signer, heartbeats))
        finally:
            watcher.close()
            loop.close()
    return {
        "agent": figures,
        "agent_rss_mb": max(figures["rss_rest_mb"], figures["rss_playing_mb"]),
        "agent_cpu_rest_percent": figures["cpu_rest_percent"],
        "agent_cpu_playing_percent": figures["cpu_playing_percent"],
        "agent_bytes_per_day": figures["bytes_per_day"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest-s", type=float, default=20.0)
    parser.add_argument("--play-s", type=float, default=20.0)
    parser.add_argument("--heartbeats", type=int, default=30, help="heartbeats counted for the traffic figure")
    args = parser.parse_args()
    result = run(
        rest_s=args.rest_s,
        play_s=args.play_s,
        heartbeats=args.heartbeats,
        note=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
