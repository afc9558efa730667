"""Run one agent until SIGTERM/SIGINT: the device's main loop."""

from __future__ import annotations

import asyncio
import signal

import httpx

from speaker_agent.agent import Agent
from speaker_agent.clock import SystemClock
from speaker_agent.config import AgentConfig
from speaker_agent.player import CommandPlayer, Player, SimulatedPlayer


async def run_agent(config: AgentConfig) -> None:
    clock = SystemClock()
    player: Player
    if config.player == "simulated":
        player = SimulatedPlayer(clock=clock, cluster_id=config.cluster_id)
    else:
        player = CommandPlayer.detect(clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=config.download_timeout_s) as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await stop.wait()
        await agent.stop()
