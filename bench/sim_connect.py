"""Connect time and memory per agent of the fleet simulator, against bare paho clients on the same driver.

Run: .venv/bin/python bench/sim_connect.py [--sizes 200,2000,10000] [--repeat 1]

For each size N it starts a fresh mosquitto (bcast.broker.LocalBroker) and, in a child process of its
own (so one measurement's freed memory does not flatter the next), connects either
- `bare`: N paho clients driven by speaker_agent.mqtt_loop.AsyncioPahoDriver, no agent logic, or
- `agent`: a firmware_sim.FleetSimulation of N real agents (data folders, state, outbox, heartbeat).
It measures the wall time from the first client created until every CONNACK arrived, and the growth
of the child's resident memory (VmRSS in /proc/self/status) divided by N. It prints one JSON object
with every run and the agent/bare ratios. The file-descriptor limit is raised to its hard limit in the
children (one socket per client); mosquitto gets `max_connections -1` (no per-listener cap).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def connect_bare(n: int, port: int, timeout_s: float, data_root: Path) -> dict:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from speaker_agent.mqtt_loop import AsyncioPahoDriver

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    connected = 0

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        nonlocal connected
        connected += 1
        if connected == n:
            done.set()

    before = rss_kb()
    started = time.perf_counter()
    clients = []
    for i in range(n):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bare-{i:05d}", clean_session=False, protocol=mqtt.MQTTv311
        )
        client.on_connect = on_connect
        driver = AsyncioPahoDriver(client, loop)
        client.connect("127.0.0.1", port, keepalive=60)
        clients.append((client, driver))
        await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), timeout_s)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)  # let the last acknowledgements settle before reading memory
    after = rss_kb()
    return {"connected": connected, "connect_s": elapsed, "rss_before_kb": before, "rss_after_kb": after}


async def connect_agents(n: int, port: int, timeout_s: float, data_root: Path) -> dict:
    from firmware_sim.fleet_sim import FleetSimulation

    ids = [f"bench-{i:05d}" for i in range(n)]
    sim = FleetSimulation(ids, data_root=data_root, mqtt_host="127.0.0.1", mqtt_port=port)
    before = rss_kb()
    started = time.perf_counter()
    await sim.start(connect_timeout_s=timeout_s)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)
    after = rss_kb()
    connected = sum(1 for c in sim.clusters.values() if c.agent.connected.is_set())
    return {"connected": connected, "connect_s": elapsed, "rss_before_kb": before, "rss_after_kb": after}


def child(kind: str, n: int, port: int, timeout_s: float, data_root: Path) -> None:
    limit = raise_fd_limit()
    # Import what both kinds need before the first RSS reading, so imports are not counted per client.
    import firmware_sim.fleet_sim  # noqa: F401
    import speaker_agent.agent  # noqa: F401

    run = connect_bare if kind == "bare" else connect_agents
    result = asyncio.run(run(n, port, timeout_s, data_root))
    result.update(kind=kind, n=n, fd_limit=limit)
    result["kb_per_client"] = round((result["rss_after_kb"] - result["rss_before_kb"]) / n, 2)
    result["connect_s"] = round(result["connect_s"], 3)
    print(json.dumps(result), flush=True)
    # Stay connected until the parent has stopped the broker: the broker then closes first and keeps
    # the TIME_WAIT sockets, so ten thousand of our ephemeral ports are not held for a minute.
    sys.stdin.read()
    os._exit(0)  # skip an orderly disconnect of every client: it is not measured


def measure(kind: str, n: int, timeout_s: float) -> dict:
    from bcast.broker import LocalBroker

    # `log_dest none`: LocalBroker pipes mosquitto's stderr and never reads it; its per-connection log
    # lines fill the pipe after a few hundred connections and the broker stops.
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as data_root:
        broker = LocalBroker(extra_config="log_dest none\nmax_connections -1").start()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, str(n), str(broker.port), str(timeout_s), data_root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = child.stdout.readline()  # type: ignore[union-attr]
        finally:
            broker.stop()
            child.stdin.close()  # type: ignore[union-attr]
            stderr = child.stderr.read()  # type: ignore[union-attr]
            child.wait(timeout_s + 120)
    if not line.strip():
        return {"kind": kind, "n": n, "error": stderr.strip().splitlines()[-1:]}
    return json.loads(line)


def machine() -> dict:
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()[:1]
    return {
        "nproc": os.cpu_count(),
        "mem_total_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "mosquitto": mosquitto[0] if mosquitto else None,
        "fd_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,10000")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and kind; the median is reported")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--child", nargs=5, metavar=("KIND", "N", "PORT", "TIMEOUT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, port, timeout_s, data_root = args.child
        child(kind, int(n), int(port), float(timeout_s), Path(data_root))
        return
    runs = []
    summary = []
    for n in (int(s) for s in args.sizes.split(",")):
        medians = {}
        for kind in ("bare", "agent"):
            results = [measure(kind, n, args.timeout) for _ in range(args.repeat)]
            runs += results
            good = sorted((r for r in results if "error" not in r), key=lambda r: r["connect_s"])
            if good:
                medians[kind] = good[len(good) // 2]
        row = {"n": n}
        for kind, result in medians.items():
            row[f"{kind}_connected"] = result["connected"]
            row[f"{kind}_connect_s"] = result["connect_s"]
            row[f"{kind}_kb_per_client"] = result["kb_per_client"]
        if len(medians) == 2:
            row["connect_ratio_agent_vs_bare"] = round(medians["agent"]["connect_s"] / medians["bare"]["connect_s"], 2)
            row["memory_ratio_agent_vs_bare"] = round(
                medians["agent"]["kb_per_client"] / max(0.01, medians["bare"]["kb_per_client"]), 2
            )
        summary.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"machine": machine(), "summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
