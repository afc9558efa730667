"""Agent configuration: a TOML file, overridden by BCAST_AGENT_* environment variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from mqtt_contract import CLUSTER_ID_PATTERN

if TYPE_CHECKING:
    from speaker_agent.mqtt_loop import MqttTls

FIRMWARE_VERSION = "bcast-agent/0.1.0"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


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
    # TLS to the broker: on with mqtt_tls or a CA file (then the port is usually 8883); a client certificate
    # is optional; the host name check stays on unless the broker's certificate does not name its host.
    mqtt_tls: bool = False
    mqtt_tls_ca_file: Path | None = None
    mqtt_tls_cert_file: Path | None = None
    mqtt_tls_key_file: Path | None = None
    mqtt_tls_check_hostname: bool = True
    # The server's Ed25519 public keys (`bcast keys show-public`), separated by spaces or commas. With at
    # least one, only commands signed by one of them are carried out (docs/security.md, "Signed commands").
    trusted_keys: str = ""
    # Without a trusted key every command is refused; true makes the agent obey unsigned commands instead
    # (a test bench, a simulated fleet). Never on a box in a village (docs/security.md).
    allow_unsigned_commands: bool = False
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
    amplifier_command: str = ""  # relay command, e.g. "gpioset gpiochip0 17={bit}"; empty: the hold is software only
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
        if self.amplifier_command.strip():
            from speaker_agent.amplifier import parse_switch_command

            try:
                parse_switch_command(self.amplifier_command)
            except ValueError as exc:
                raise ConfigError(f"amplifier_command: {exc}") from None
        if self.download_attempts < 1 or self.download_backoff_s < 0:
            raise ConfigError("download_attempts must be at least 1 and download_backoff_s not negative")
        if (self.cache_max_bytes is not None and self.cache_max_bytes <= 0) or self.cache_min_free_bytes < 0:
            raise ConfigError("cache_max_bytes must be positive and cache_min_free_bytes not negative")
        if self.mqtt_tls_key_file is not None and self.mqtt_tls_cert_file is None:
            raise ConfigError("mqtt_tls_key_file needs mqtt_tls_cert_file")
        try:
            from mqtt_contract.signing import InvalidKey, trust

            trust(self.trusted_public_keys)
        except InvalidKey as exc:
            raise ConfigError(f"trusted_keys: {exc}") from None
        for name in ("mqtt_tls_ca_file", "mqtt_tls_cert_file", "mqtt_tls_key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name}: {path} is not a readable file")

    @property
    def trusted_public_keys(self) -> tuple[str, ...]:
        """The configured public keys of the server, in text form."""
        return tuple(k for k in self.trusted_keys.replace(",", " ").split() if k)

    @property
    def mqtt_tls_options(self) -> MqttTls | None:
        """The TLS settings for the broker connection, or None for plain MQTT."""
        if not (self.mqtt_tls or self.mqtt_tls_ca_file or self.mqtt_tls_cert_file):
            return None
        from speaker_agent.mqtt_loop import MqttTls

        return MqttTls(
            self.mqtt_tls_ca_file, self.mqtt_tls_cert_file, self.mqtt_tls_key_file, self.mqtt_tls_check_hostname
        )

    @classmethod
    def load(cls, path: Path | None, env: dict[str, str] | None = None) -> AgentConfig:
        """Read the TOML file (table [agent] or top level) then apply BCAST_AGENT_<KEY> variables.

        Without an MQTT username there, the credentials stored by `bcast agent enrol` in data_dir are used."""
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
                if kind == "bool":
                    converted[name] = _boolean(value)
                elif kind == "Path | None":
                    converted[name] = None if value in (None, "") else Path(str(value))
                elif kind == "int | None":
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
        if not converted.get("mqtt_username") or not converted.get("trusted_keys"):
            from speaker_agent.enrol import CredentialsError, load_credentials

            try:
                stored = load_credentials(Path(converted["data_dir"]), str(converted["cluster_id"]))  # type: ignore[arg-type]
            except CredentialsError as exc:
                raise ConfigError(str(exc)) from None
            if stored is not None and not converted.get("mqtt_username"):
                converted["mqtt_username"], converted["mqtt_password"] = stored.username, stored.password
            if stored is not None and not converted.get("trusted_keys"):
                converted["trusted_keys"] = stored.trusted_keys  # the server's keys, given at enrolment
        return cls(**converted)  # type: ignore[arg-type]


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")
