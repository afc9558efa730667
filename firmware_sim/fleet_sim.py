"""Run a fleet of real agents on one asyncio loop, each with its own MQTT connection and data folder."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from speaker_agent.agent import Agent
from speaker_agent.clock import SystemClock
from speaker_agent.config import AgentConfig
from speaker_agent.player import PlayRecord, SimulatedPlayer


@dataclass
class SimulatedCluster:
    cluster_id: str
    agent: Agent
    player: SimulatedPlayer
    online: bool


class FleetSimulation:
    """Starts the agents of the given clusters; `offline` ones are created but never connect."""

    def __init__(
        self,
        cluster_ids: Iterable[str],
        *,
        data_root: Path,
        mqtt_host: str,
        mqtt_port: int,
        topic_root: str = "bcast",
        speed: float = 1.0,
        heartbeat_interval_s: float = 60.0,
        offline: Iterable[str] = (),
        seed: int = 0,
    ) -> None:
        self.cluster_ids = list(cluster_ids)
        self.data_root = data_root
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.topic_root = topic_root
        self.speed = speed
        self.heartbeat_interval_s = heartbeat_interval_s
        self.offline = set(offline)
        self.rng = random.Random(seed)
        self.clusters: dict[str, SimulatedCluster] = {}
        # One HTTP client for the whole fleet: a client per agent would cost an SSL context each.
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64))

    async def start(self, *, connect_timeout_s: float = 60.0) -> None:
        """Create every agent, start the online ones, and wait until they are all connected."""
        clock = SystemClock()
        for cluster_id in self.cluster_ids:
            player = SimulatedPlayer(clock=clock, cluster_id=cluster_id, speed=self.speed)
            config = AgentConfig(
                cluster_id=cluster_id,
                data_dir=self.data_root / cluster_id,
                mqtt_host=self.mqtt_host,
                mqtt_port=self.mqtt_port,
                topic_root=self.topic_root,
                heartbeat_interval_s=self.heartbeat_interval_s,
            )
            agent = Agent(config, http=self.http, player=player, clock=clock, rng=random.Random(self.rng.random()))
            online = cluster_id not in self.offline
            self.clusters[cluster_id] = SimulatedCluster(cluster_id, agent, player, online)
            if online:
                await agent.start()
                await asyncio.sleep(0)  # let earlier sockets make progress while we open more
        await asyncio.wait_for(
            asyncio.gather(*(c.agent.connected.wait() for c in self.clusters.values() if c.online)),
            timeout=connect_timeout_s,
        )

    async def stop(self) -> None:
        await asyncio.gather(*(c.agent.stop() for c in self.clusters.values() if c.online), return_exceptions=True)
        await self.http.aclose()

    def summary(self) -> dict[str, object]:
        """Ground truth as JSON-ready counts: clusters, online, and what the speakers really played."""
        played = [r for r in self.ground_truth() if r.completed]
        return {
            "clusters": len(self.clusters),
            "online": sum(1 for c in self.clusters.values() if c.online),
            "plays_completed": len(played),
            "plays_interrupted": sum(1 for r in self.ground_truth() if not r.completed),
            "clusters_played": len({r.cluster_id for r in played}),
        }

    def ground_truth(self) -> list[PlayRecord]:
        """Every playback the simulated speakers really did, in no particular order."""
        return [record for c in self.clusters.values() for record in c.player.log]
