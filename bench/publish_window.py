"""Publishing a province's commands: CPU of `MqttBus.publish_commands` with and without an in-flight window.

The server's own path (sign, encode, publish at QoS 1, wait for every PUBACK) for N play commands to a
fresh mosquitto, run with the bus as configured (`MAX_INFLIGHT`: 0, no window of our own) and with the
1,000-message window it had before; then a bare paho client publishing the same payloads pre-encoded,
with and without the window. In alternation, a few rounds each; each figure is the median CPU seconds of
the process per round. Nobody subscribes, so the broker only acknowledges.

    python -m bench.publish_window [--commands 10000] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PREVIOUS_WINDOW = 1_000


def play_commands(n: int) -> list[tuple[str, dict[str, Any]]]:
    """N play commands as dispatch builds them for one broadcast (one audio file, one id each)."""
    from mqtt_contract.times import isoformat

    now = datetime.now(UTC)
    sha = "ab" * 32
    audio = {
        "url": f"http://127.0.0.1:8000/api/v1/audio/{sha}",
        "sha256": sha,
        "size_bytes": 80_476,
        "duration_s": 10.0,
    }
    broadcast = uuid.uuid4().hex
    return [
        (
            f"cluster-{i:05d}",
            {
                "v": 1,
                "id": uuid.uuid4().hex,
                "type": "play",
                "issued_at": isoformat(now),
                "expires_at": isoformat(now + timedelta(minutes=30)),
                "play": {
                    "broadcast_id": broadcast,
                    "priority": "emergency",
                    "title": "Thông báo khẩn cấp",
                    "audio": audio,
                },
            },
        )
        for i in range(n)
    ]


def one_round(port: int, key_file: Path, commands: list[tuple[str, dict[str, Any]]], window: int | None) -> float:
    """CPU seconds of this process to publish every command and see it acknowledged (window None: the bus's)."""
    from broadcast_server.messaging.mqtt_bus import MqttBus
    from broadcast_server.signing.command_signer import ServerCommandSigner

    bus = MqttBus("127.0.0.1", port, topic_root=f"bench-{uuid.uuid4().hex[:6]}", signer=ServerCommandSigner(key_file))
    if window is not None:
        bus._client.max_inflight_messages_set(window)  # noqa: SLF001 - the previous configuration, for the baseline
    bus.start()
    try:
        cpu0 = time.process_time()
        acknowledged = bus.publish_commands(commands)
        used = time.process_time() - cpu0
    finally:
        bus.stop()
    if len(acknowledged) != len(commands):
        raise RuntimeError(f"only {len(acknowledged)} of {len(commands)} commands acknowledged")
    return used


def bare_round(port: int, payloads: list[tuple[str, bytes]], window: int) -> float:
    """CPU seconds of a bare paho client publishing pre-encoded payloads at QoS 1 until all are acknowledged."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(len(payloads) + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        cpu0 = time.process_time()
        infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(60)
        used = time.process_time() - cpu0
        if not all(info.is_published() for info in infos):
            raise RuntimeError("not every message was acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()
    return used


def run(n: int = 10_000, rounds: int = 3) -> dict[str, Any]:
    from bcast.broker import LocalBroker

    commands = play_commands(n)
    broker = LocalBroker().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
            key_file = Path(tmp) / "signing-keys.json"
            one_round(broker.port, key_file, commands[:100], None)  # warm up: key file, imports, broker
            payloads = [(f"bench-bare/{cluster_id}", json.dumps(command).encode()) for cluster_id, command in commands]
            current: list[float] = []
            previous: list[float] = []
            bare_now: list[float] = []
            bare_before: list[float] = []
            for _ in range(rounds):
                previous.append(one_round(broker.port, key_file, commands, PREVIOUS_WINDOW))
                current.append(one_round(broker.port, key_file, commands, None))
                bare_before.append(bare_round(broker.port, payloads, PREVIOUS_WINDOW))
                bare_now.append(bare_round(broker.port, payloads, 0))
    finally:
        broker.stop()
    cpu_now, cpu_before = statistics.median(current), statistics.median(previous)
    bare, bare_windowed = statistics.median(bare_now), statistics.median(bare_before)
    return {
        "commands": n,
        "rounds": rounds,
        "cpu_s_no_window": round(cpu_now, 3),
        "cpu_s_window_1000": round(cpu_before, 3),
        "cpu_us_per_command": round(cpu_now / n * 1e6, 1),
        "ratio": round(cpu_now / cpu_before, 3),
        "bare_paho_cpu_s_no_window": round(bare, 3),
        "bare_paho_cpu_s_window_1000": round(bare_windowed, 3),
        "bare_paho_ratio": round(bare / bare_windowed, 3),
        "cpu_s_all_rounds": {
            "no_window": [round(x, 3) for x in current],
            "window_1000": [round(x, 3) for x in previous],
            "bare_no_window": [round(x, 3) for x in bare_now],
            "bare_window_1000": [round(x, 3) for x in bare_before],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = run(args.commands, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['commands']:,} commands through MqttBus: {result['cpu_s_no_window']} CPU s without a window, "
        f"{result['cpu_s_window_1000']} with 1,000 in flight (ratio {result['ratio']}); bare paho: "
        f"{result['bare_paho_cpu_s_no_window']} against {result['bare_paho_cpu_s_window_1000']} "
        f"(ratio {result['bare_paho_ratio']})"
    )


if __name__ == "__main__":
    main()
