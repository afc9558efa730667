"""Agent configuration: a TOML file, overridden by BCAST_AGENT_* environment variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from mqtt_contract import CLUSTER_ID_PATTERN

FIRMWARE_VERSION = "bcast-agent/0.1.0"


class ConfigError(ValueError):
    """The agent's configuration file or environment is wrong; the message says which key and why."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything one agent needs to know; no default points at a real host except loopback."""

    cluster_id: str
    data_dir: Path
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    topic_root: str = "bcast"
    keepalive_s: int = 60
    heartbeat_interval_s: float = 60.0
    download_attempts: int = 4
    download_backoff_s: float = 0.5  # first retry delay; doubles each attempt, with jitter
    download_timeout_s: float = 60.0
    cache_max_bytes: int | None = None  # cap on cached audio; None: only the disk's free space limits it
    cache_min_free_bytes: int = 32 * 1024 * 1024  # free space left on the disk; LRU files are evicted for it
    player: str = "auto"  # "auto": the first of ffplay, mpv, mpg123 installed; "simulated": no sound
    volume: int = 80
    firmware: str = FIRMWARE_VERSION
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not CLUSTER_ID_PATTERN.match(self.cluster_id):
            raise ConfigError(f"cluster_id {self.cluster_id!r} must match {CLUSTER_ID_PATTERN.pattern}")
        if not 0 < self.mqtt_port < 65536:
            raise ConfigError(f"mqtt_port {self.mqtt_port} is not a TCP port")
        if self.heartbeat_interval_s <= 0:
            raise ConfigError("heartbeat_interval_s must be positive")
        if not 0 <= self.volume <= 100:
            raise ConfigError("volume must be within 0..100")
        if self.download_attempts < 1 or self.download_backoff_s < 0:
            raise ConfigError("download_attempts must be at least 1 and download_backoff_s not negative")
        if (self.cache_max_bytes is not None and self.cache_max_bytes <= 0) or self.cache_min_free_bytes < 0:
            raise ConfigError("cache_max_bytes must be positive and cache_min_free_bytes not negative")

    @classmethod
    def load(cls, path: Path | None, env: dict[str, str] | None = None) -> AgentConfig:
        """Read the TOML file (table [agent] or top level) then apply BCAST_AGENT_<KEY> variables."""
        env = dict(os.environ) if env is None else env
        values: dict[str, object] = {}
        if path is not None:
            try:
                document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {path}: {exc}") from None
            values.update(document.get("agent", document))
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        for name in known:
            key = f"BCAST_AGENT_{name.upper()}"
            if key in env:
                values[name] = env[key]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        if "cluster_id" not in values or "data_dir" not in values:
            raise ConfigError("cluster_id and data_dir are required")
        converted: dict[str, object] = {}
        for name, value in values.items():
            kind = known[name].type
            try:
                if kind == "int | None":
                    converted[name] = None if value in (None, "") else int(value)  # type: ignore[arg-type]
                elif kind in ("int",):
                    converted[name] = int(value)  # type: ignore[arg-type]
                elif kind in ("float",):
                    converted[name] = float(value)  # type: ignore[arg-type]
                elif kind == "Path":
                    converted[name] = Path(str(value))
                else:
                    converted[name] = None if value is None else str(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: {value!r} is not a valid {kind}") from None
        return cls(**converted)  # type: ignore[arg-type]
