"""Run one agent until SIGTERM/SIGINT: the device's main loop.

`main(config)` is what `bcast agent --config FILE` runs. bcast/cli.py calls it without building the Typer
command line when the arguments are just that (the device's service), so the resident agent carries
neither Typer nor the pydantic that Typer loads to coerce options (issue 9: under 40 MB resident).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from speaker_agent.agent import Agent
from speaker_agent.clock import SystemClock
from speaker_agent.config import AgentConfig, ConfigError
from speaker_agent.http_client import UrllibClient
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
    # urllib, not httpx, on a device: see speaker_agent/http_client.py (the simulator passes httpx clients).
    async with UrllibClient(timeout=config.download_timeout_s) as http:
        agent = Agent(config, http=http, player=player, clock=clock)
        await agent.start()
        await stop.wait()
        await agent.stop()


def config_argument(args: list[str]) -> Path | None:
    """The file of `--config FILE`, `-c FILE` or `--config=FILE` when the arguments are only that, else None."""
    if len(args) == 2 and args[0] in ("--config", "-c") and args[1] and not args[1].startswith("-"):
        return Path(args[1])
    if len(args) == 1 and args[0].startswith("--config=") and len(args[0]) > len("--config="):
        return Path(args[0].removeprefix("--config="))
    return None


def main(config: Path) -> int:
    """Load the configuration and run the agent until SIGTERM or SIGINT; the exit status (2: bad config)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = AgentConfig.load(config)
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_agent(settings))
    except KeyboardInterrupt:
        pass
    return 0
