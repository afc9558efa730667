"""The agent that runs on each loudspeaker cluster's receiver box.

It installs with the base dependencies only (paho-mqtt, fastjsonschema, pynacl, httpx, typer): never
import the server's packages from here. A running agent imports neither httpx nor typer (issue 9: under
40 MB resident; see speaker_agent/runner.py and speaker_agent/http_client.py).
"""

from speaker_agent.agent import Agent
from speaker_agent.config import AgentConfig, ConfigError

__all__ = ["Agent", "AgentConfig", "ConfigError"]
