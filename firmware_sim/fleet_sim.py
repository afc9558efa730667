"""Run a fleet of real agents on one asyncio loop, each with its own MQTT connection and data folder.

Each agent costs one socket and no thread: paho is driven by the loop's socket callbacks, the keepalive
by one ticker for all, and the HTTP client (aiohttp, injecting the faults: firmware_sim.network) is shared.

Faults come from a `Scenario` (see firmware_sim.scenario) and are chosen from its seed:
- offline: the agent is created but never connects;
- cut off for a period: `network` keeps the agent running but drops its MQTT connection and refuses
  its HTTP requests until the end of the period; `power` kills it (memory lost, disk kept) and starts
  a fresh Agent on the same data folder at the end of the period;
- corrupted, truncated or slow downloads, in the shared HTTP transport, per cluster;
- clock skew: the agent's clock runs ahead (or behind) by a fixed offset;
- amplifier failure: the simulated player refuses to play (reports 'failed', heartbeat 'fault');
- broker restart: needs the simulator's own broker (a `LocalBroker`).
`summary()` gives the ground truth: what the speakers really played and the reports agents made.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim.network import FaultyHttpClient, HttpFaults
from firmware_sim.origin import AudioOrigin
from firmware_sim.scenario import Dispatch, FleetMember, Scenario, Selection
from mqtt_contract import Channel, Topics, encode
from mqtt_contract.signing import CommandSigner
from speaker_agent.agent import Agent
from speaker_agent.clock import Clock, SystemClock, isoformat
from speaker_agent.config import AgentConfig
from speaker_agent.player import PlayRecord, SimulatedPlayer

log = logging.getLogger(__name__)
T = TypeVar("T")  # what a fleet's main coroutine returns (run_fleet)

HTTP_CONNECTIONS = 256  # at most this many downloads at once from one simulator process
LATE_S = 1.0  # a play that began this long after its start time counts as late in the summary


class SimulationError(RuntimeError):
    """The simulation cannot do what was asked (e.g. restart a broker it does not own)."""


def run_fleet(main: Coroutine[Any, Any, T]) -> T:
    """Run a fleet's coroutine on uvloop where it is installed (the server extra brings it), else asyncio's loop.

    Thousands of agents make the loop itself the simulator's hot path (sockets, callbacks, timers); uvloop
    runs the same asyncio code, so the agents' code is unchanged."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@dataclass
class SimulatedCluster:
    cluster_id: str
    agent: Agent
    player: SimulatedPlayer
    online: bool
    commune: str = ""
    clock: SystemClock = field(default_factory=SystemClock)
    reports: list[dict[str, Any]] = field(default_factory=list)  # every report its agents made, in order
    down: str | None = None  # 'network' or 'power' while cut off
    link_cuts: int = 0
    power_losses: int = 0


class FleetSimulation:
    """Starts the agents of the given clusters; `offline` ones are created but never connect."""

    def __init__(
        self,
        cluster_ids: Iterable[str],
        *,
        data_root: Path,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        topic_root: str = "bcast",
        speed: float = 1.0,
        heartbeat_interval_s: float = 60.0,
        offline: Iterable[str] = (),
        seed: int = 0,
        communes: Mapping[str, str] | None = None,
        scenario: Scenario | None = None,
        broker: Any = None,
        agent_options: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        trusted_keys: Iterable[str] | None = None,
    ) -> None:
        communes = communes or {}
        # The simulator signs its own dispatches. Given `trusted_keys` (e.g. the server's public key), its
        # agents trust those and the simulator's key and refuse anything else; without, they trust no key
        # and obey unsigned commands (allow_unsigned_commands).
        self.signer = CommandSigner.generate()
        self.trusted_keys = None if trusted_keys is None else [self.signer.public_key, *trusted_keys]
        self.clock = clock  # shared by all agents (e.g. an AcceleratedClock); None: the system clock
        self.cluster_ids = list(cluster_ids)
        self.members = [FleetMember(cid, communes.get(cid, "")) for cid in self.cluster_ids]
        self.data_root = data_root
        self.broker = broker  # a bcast.broker.LocalBroker the simulation may restart, or None
        self.mqtt_host = broker.host if broker is not None else mqtt_host
        self.mqtt_port = broker.port if broker is not None else mqtt_port
        self.topic_root = topic_root
        self.topics = Topics(topic_root)
        self.speed = speed
        self.heartbeat_interval_s = heartbeat_interval_s
        self.scenario = scenario or Scenario(seed=seed)
        self.rng = random.Random(self.scenario.seed)
        self.agent_options = {"cache_min_free_bytes": 0, **(agent_options or {})}
        if self.trusted_keys is not None:
            self.agent_options.setdefault("trusted_keys", " ".join(self.trusted_keys))
        else:  # a fleet that knows no server key obeys unsigned commands, as a test bench may
            self.agent_options.setdefault("allow_unsigned_commands", True)
        self.clusters: dict[str, SimulatedCluster] = {}
        self.faults = HttpFaults()
        # One HTTP client for the fleet: aiohttp queues the downloads beyond its connections (see network.py).
        self.http = FaultyHttpClient(self.faults, connections=HTTP_CONNECTIONS)
        self.origin: AudioOrigin | None = None
        self.dispatched: list[dict[str, Any]] = []
        self._dispatches = 0
        self.events: list[dict[str, Any]] = []
        self.broker_restarts = 0
        self.connect_s: float | None = None
        self._t0: float | None = None
        self._publisher: mqtt.Client | None = None
        self._publisher_ready = asyncio.Event()
        self._publisher_driver: Any = None
        self._outstanding: set[int] = set()
        self._timeline: list[asyncio.Task[Any]] = []
        self._plan(set(offline))

    # ----------------------------------------------------------------- plan (from the seed only)

    def _pick(self, selection: Selection, purpose: str) -> set[str]:
        return selection.pick(self.members, self.scenario.rng(purpose))

    def _plan(self, offline: set[str]) -> None:
        s = self.scenario
        self.offline = offline | self._pick(s.offline, "offline")
        self.skew: dict[str, float] = {}
        if s.skew is not None:
            self.skew = dict.fromkeys(sorted(self._pick(s.skew.select, "clock_skew")), s.skew.offset_s)
        for fault, table, purpose in (
            (s.corrupt, self.faults.corrupt, "corrupt"),
            (s.truncate, self.faults.truncate, "truncate"),
        ):
            if fault is not None:
                table.update(dict.fromkeys(self._pick(fault.select, purpose), fault.responses))
        if s.slow is not None:
            self.faults.slow.update(dict.fromkeys(self._pick(s.slow.select, "slow_link"), s.slow.bytes_per_s))
        self.amplifier_failing = self._pick(s.amplifier.select, "amplifier") if s.amplifier else set()
        # cluster -> (streams it cannot reach, stream -> seconds after which it drops once)
        self.stream_faults: dict[str, tuple[set[str], dict[str, float]]] = {}
        for i, fault in enumerate(s.stream_faults):
            for cid in self._pick(fault.select, f"stream{i}"):
                down, drops = self.stream_faults.setdefault(cid, (set(), {}))
                if fault.drops_after_s is None:
                    down.add(fault.stream)
                else:
                    drops[fault.stream] = fault.drops_after_s
        # Counted now: a simulated player forgets a drop once it has dropped.
        self.stream_fault_counts = {
            "stream_unreachable": sum(1 for down, _ in self.stream_faults.values() if down),
            "stream_dropping": sum(1 for _, drops in self.stream_faults.values() if drops),
        }
        self.cutoff_targets = [(c, self._pick(c.select, f"cutoff{i}")) for i, c in enumerate(s.cutoffs)]
        all_ids = set(self.cluster_ids)
        self.dispatch_targets = [
            (d, all_ids if d.select.empty else self._pick(d.select, f"dispatch{i}")) for i, d in enumerate(s.dispatches)
        ]
        if s.broker_restarts and self.broker is None:
            raise SimulationError("a broker restart needs the simulator's own broker (bcast sim run --local-broker)")

    # ----------------------------------------------------------------- agents

    def _make_agent(self, cluster: SimulatedCluster) -> Agent:
        config = AgentConfig(
            cluster_id=cluster.cluster_id,
            data_dir=self.data_root / cluster.cluster_id,
            mqtt_host=self.mqtt_host,
            mqtt_port=self.mqtt_port,
            topic_root=self.topic_root,
            heartbeat_interval_s=self.heartbeat_interval_s,
            **self.agent_options,
        )
        return Agent(
            config,
            http=self.http,
            player=cluster.player,
            clock=cluster.clock,
            rng=self.rng,  # jitter only; one generator for all saves ~2.5 KB per agent
            on_report=cluster.reports.append,
        )

    async def start(self, *, connect_timeout_s: float = 60.0) -> None:
        """Create every agent, start the online ones, and wait until they are all connected."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        shared_clock = self.clock or SystemClock()
        for member in self.members:
            cid = member.cluster_id
            clock = SystemClock(self.skew[cid]) if cid in self.skew else shared_clock
            player = SimulatedPlayer(clock=clock, cluster_id=cid, speed=self.speed)
            if cid in self.stream_faults:  # the few clusters a stream fault hits get knobs of their own
                player.stream_down, player.stream_drops = self.stream_faults[cid]
            cluster = SimulatedCluster(cid, None, player, cid not in self.offline, member.commune, clock)  # type: ignore[arg-type]
            cluster.agent = self._make_agent(cluster)
            self.clusters[cid] = cluster
            if cluster.online:
                await cluster.agent.start()
                await asyncio.sleep(0)  # let earlier sockets make progress while we open more
        await asyncio.wait_for(
            asyncio.gather(*(c.agent.connected.wait() for c in self.clusters.values() if c.online)),
            timeout=connect_timeout_s,
        )
        self.connect_s = loop.time() - started
        self._t0 = loop.time()
        if self.scenario.amplifier is not None and self.scenario.amplifier.at_s <= 0:
            self.fail_amplifiers(self.amplifier_failing)

    async def stop(self) -> None:
        for task in self._timeline:
            task.cancel()
        await asyncio.gather(*self._timeline, return_exceptions=True)
        await asyncio.gather(*(c.agent.stop() for c in self.clusters.values() if c.online), return_exceptions=True)
        if self._publisher is not None:
            self._publisher.disconnect()
            await asyncio.sleep(0.05)
            if self._publisher_driver is not None:
                self._publisher_driver.close()
        if self.origin is not None:
            await self.origin.close()
        await self.http.aclose()

    def communes(self) -> dict[str, list[str]]:
        """Cluster ids by commune, in fleet order."""
        by_commune: dict[str, list[str]] = {}
        for member in self.members:
            by_commune.setdefault(member.commune, []).append(member.cluster_id)
        return by_commune

    # ----------------------------------------------------------------- faults

    def _event(self, kind: str, **details: Any) -> None:
        loop = asyncio.get_running_loop()
        at = round(loop.time() - self._t0, 3) if self._t0 is not None else 0.0
        self.events.append({"at_s": at, "event": kind, **details})

    async def cut(self, cluster_ids: Iterable[str], mode: str = "network") -> None:
        """Cut clusters off: 'network' drops the link (agent keeps running), 'power' kills the agent."""
        if mode not in ("network", "power"):
            raise SimulationError(f"unknown cut mode {mode!r}")
        hit = []
        for cid in cluster_ids:
            cluster = self.clusters[cid]
            if not cluster.online or cluster.down:
                continue
            cluster.down = mode
            hit.append(cid)
            if mode == "network":
                self.faults.cut.add(cid)
                cluster.agent.link_lost()
                cluster.link_cuts += 1
            else:
                cluster.power_losses += 1
        if mode == "power":
            await asyncio.gather(*(self.clusters[cid].agent.kill() for cid in hit))
        self._event("cut", mode=mode, clusters=len(hit))

    async def restore(self, cluster_ids: Iterable[str]) -> None:
        """End a cut: the link comes back, or power returns and a fresh agent boots from the same disk."""
        hit = 0
        for cid in cluster_ids:
            cluster = self.clusters[cid]
            if cluster.down == "network":
                self.faults.cut.discard(cid)
                cluster.agent.link_restored()
            elif cluster.down == "power":
                cluster.agent = self._make_agent(cluster)
                await cluster.agent.start()
            else:
                continue
            cluster.down = None
            hit += 1
        self._event("restore", clusters=hit)

    def fail_amplifiers(self, cluster_ids: Iterable[str]) -> None:
        ids = list(cluster_ids)
        for cid in ids:
            self.clusters[cid].player.amplifier_fault = True
        self._event("amplifier_failure", clusters=len(ids))

    async def restart_broker(self, down_s: float) -> None:
        """Stop the simulator's broker, wait, start it again on the same port (sessions are lost)."""
        if self.broker is None:
            raise SimulationError("a broker restart needs the simulator's own broker")
        self._event("broker_stop")
        await asyncio.to_thread(self.broker.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.broker.start)
        self.broker_restarts += 1
        self._event("broker_start")

    # ----------------------------------------------------------------- commands (a stand-in for the server)

    async def _ensure_origin(self) -> AudioOrigin:
        if self.origin is None:
            self.origin = await AudioOrigin().start()
        return self.origin

    async def _ensure_publisher(self, timeout_s: float = 10.0) -> mqtt.Client:
        from speaker_agent.mqtt_loop import AsyncioPahoDriver

        client = self._publisher
        if client is not None and client.is_connected():
            return client
        if self._publisher_driver is not None:
            self._publisher_driver.close()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bcast-sim-{uuid.uuid4().hex[:8]}")
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        self._publisher_ready.clear()
        client.on_connect = lambda c, u, f, rc, p: self._publisher_ready.set()
        client.on_publish = lambda c, u, mid, rc, p: self._outstanding.discard(mid)
        self._publisher = client
        self._publisher_driver = AsyncioPahoDriver(client, asyncio.get_running_loop())
        client.connect(self.mqtt_host, self.mqtt_port, keepalive=30)
        await asyncio.wait_for(self._publisher_ready.wait(), timeout_s)
        return client

    async def dispatch(
        self,
        cluster_ids: Iterable[str] | None = None,
        *,
        priority: str = "normal",
        expires_in_s: float = 60.0,
        start_in_s: float = 0.0,
        duration_s: float = 10.0,
        size_bytes: int = 20_000,
        audio: bytes | None = None,
        stream: str | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """Publish one play command to each cluster (QoS 1), with audio from the simulator's origin, or for a
        live relay the `stream` address for `duration_s` (whole seconds; nothing served).

        Returns what was sent: broadcast id, audio hash (None for a relay) and the command id per cluster."""
        self._dispatches += 1
        number = self._dispatches  # dispatches may overlap: count at the start, not at the end
        if stream is not None:
            url, sha256 = stream, None
            content: dict[str, Any] = {"stream": {"url": stream, "duration_s": int(duration_s)}}
        else:
            origin = await self._ensure_origin()
            if audio is None:
                audio = random.Random(f"{self.scenario.seed}:audio{number}").randbytes(size_bytes)
            url, sha256, size = origin.add(f"sim-{number}-{hashlib.sha256(audio).hexdigest()[:12]}.mp3", audio)
            content = {"audio": {"url": url, "sha256": sha256, "size_bytes": size, "duration_s": duration_s}}
        broadcast_id = f"sim-{number}-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        client = await self._ensure_publisher()
        targets = list(self.cluster_ids if cluster_ids is None else cluster_ids)
        commands: dict[str, str] = {}
        for cid in targets:
            command = {
                "v": 1,
                "id": uuid.uuid4().hex,
                "type": "play",
                "issued_at": isoformat(now),
                "expires_at": isoformat(now + timedelta(seconds=expires_in_s)),
                "play": {
                    "broadcast_id": broadcast_id,
                    "priority": priority,
                    "start_at": isoformat(now + timedelta(seconds=start_in_s)) if start_in_s else None,
                    **content,
                },
            }
            info = client.publish(
                self.topics.for_cluster(cid, Channel.COMMAND), encode(Channel.COMMAND, self.signer.sign(command)), qos=1
            )
            self._outstanding.add(info.mid)
            commands[cid] = command["id"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._outstanding and loop.time() < deadline:
            await asyncio.sleep(0.02)
        record = {
            "broadcast_id": broadcast_id,
            "url": url,
            "sha256": sha256,
            "priority": priority,
            "commands": commands,
        }
        self.dispatched.append(record)
        self._event("dispatch", broadcast_id=broadcast_id, clusters=len(targets))
        return record

    # ----------------------------------------------------------------- timeline

    async def run_timeline(self) -> None:
        """Play the scenario's timed events (cut-offs, amplifier failures, broker restarts, dispatches)."""
        assert self._t0 is not None, "start() first"
        loop = asyncio.get_running_loop()

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, self._t0 + offset - loop.time()))  # type: ignore[operator]

        async def cutoff(cut: Any, ids: set[str]) -> None:
            await at(cut.at_s)
            await self.cut(sorted(ids), cut.mode)
            await at(cut.at_s + cut.for_s)
            await self.restore(sorted(ids))

        async def amplifiers(at_s: float) -> None:
            await at(at_s)
            self.fail_amplifiers(self.amplifier_failing)

        async def restart(at_s: float, down_s: float) -> None:
            await at(at_s)
            await self.restart_broker(down_s)

        async def dispatch(d: Dispatch, ids: set[str]) -> None:
            await at(d.at_s)
            await self.dispatch(
                sorted(ids),
                priority=d.priority,
                expires_in_s=d.expires_in_s,
                start_in_s=d.start_in_s,
                duration_s=d.duration_s,
                size_bytes=d.size_bytes,
                stream=d.stream,
            )

        jobs = [cutoff(c, ids) for c, ids in self.cutoff_targets]
        if self.scenario.amplifier is not None and self.scenario.amplifier.at_s > 0:
            jobs.append(amplifiers(self.scenario.amplifier.at_s))
        jobs += [restart(r.at_s, r.down_s) for r in self.scenario.broker_restarts]
        jobs += [dispatch(d, ids) for d, ids in self.dispatch_targets]
        self._timeline = [loop.create_task(job) for job in jobs]
        await asyncio.gather(*self._timeline)

    # ----------------------------------------------------------------- ground truth

    def ground_truth(self) -> list[PlayRecord]:
        """Every playback the simulated speakers really did, in no particular order."""
        return [record for c in self.clusters.values() for record in c.player.log]

    def reports(self) -> list[dict[str, Any]]:
        """Every report the agents made (each once, whatever the broker saw)."""
        return [report for c in self.clusters.values() for report in c.reports]

    def summary(self) -> dict[str, Any]:
        """Ground truth as JSON-ready counts: what the speakers really played and what agents reported."""
        records = self.ground_truth()
        played = [r for r in records if r.completed]
        played_clusters = {r.cluster_id for r in played}
        reports = self.reports()
        lates = [r.get("late_s", 0.0) for r in reports if r["status"] == "played"]
        communes = []
        for name, ids in self.communes().items():
            communes.append(
                {
                    "name": name,
                    "clusters": len(ids),
                    "offline": sum(1 for cid in ids if cid in self.offline),
                    "played": sum(1 for cid in ids if cid in played_clusters),
                }
            )
        return {
            "clusters": len(self.clusters),
            "online": sum(1 for c in self.clusters.values() if c.online),
            "offline": sum(1 for c in self.clusters.values() if not c.online),
            "plays_completed": len(played),
            "plays_interrupted": sum(1 for r in records if not r.completed),
            "clusters_played": len(played_clusters),
            # A played file whose bytes do not hash to the name the cache gave it: must stay 0. A relayed
            # stream has no file and no hash (its record names the stream's address).
            "played_bad_hash": sum(1 for r in records if r.sha256 and r.file != f"{r.sha256}.audio"),
            "plays_relayed": sum(1 for r in records if not r.sha256),
            "reports": dict(sorted(Counter(r["status"] for r in reports).items())),
            "reports_total": len(reports),
            "reports_unsent": sum(len(c.agent.outbox) for c in self.clusters.values() if c.online),
            "played_late": sum(1 for late in lates if late >= LATE_S),
            "max_late_s": max(lates, default=0.0),
            "communes": communes,
            "faults": {
                "clock_skewed": len(self.skew),
                "amplifier_failed": sum(1 for c in self.clusters.values() if c.player.amplifier_fault),
                "link_cuts": sum(c.link_cuts for c in self.clusters.values()),
                "power_losses": sum(c.power_losses for c in self.clusters.values()),
                "broker_restarts": self.broker_restarts,
                **self.stream_fault_counts,
                **self.faults.counters(),
            },
            "dispatched": [
                {"broadcast_id": d["broadcast_id"], "clusters": len(d["commands"]), "priority": d["priority"]}
                for d in self.dispatched
            ],
            "connect_s": round(self.connect_s, 3) if self.connect_s is not None else None,
            "events": self.events,
        }
