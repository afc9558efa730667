"""The agent that runs on each loudspeaker cluster's receiver box.

It installs with the base dependencies only (paho-mqtt, httpx, fastjsonschema, typer): never import
the server's packages from here.
"""

from speaker_agent.agent import Agent
from speaker_agent.config import AgentConfig, ConfigError

__all__ = ["Agent", "AgentConfig", "ConfigError"]
