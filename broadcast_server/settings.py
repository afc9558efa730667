"""Server configuration, read from ``BCAST_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_dir() -> Path:
    return Path(user_data_dir("bcast"))


def _default_database_url() -> str:
    return f"sqlite:///{_data_dir() / 'bcast.sqlite3'}"


def _default_audio_dir() -> Path:
    return _data_dir() / "audio"


def _default_signing_key_file() -> Path:
    return _data_dir() / "signing-keys.json"


class Settings(BaseSettings):
    """Everything the server needs to know about its surroundings; defaults suit a single machine."""

    model_config = SettingsConfigDict(env_prefix="BCAST_", extra="ignore")

    database_url: str = Field(default_factory=_default_database_url)
    audio_dir: Path = Field(default_factory=_default_audio_dir)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    topic_root: str = "bcast"
    # The server's MQTT client id; its session is persistent, so reports wait at the broker during a restart.
    mqtt_client_id: str = "bcast-server"
    # Server replicas: each needs its own client id, and they share the ingest through an MQTT shared
    # subscription of this group ($share/<group>/...), so each report is stored by one replica.
    mqtt_shared_group: str | None = None
    # The leader resends broadcasts still owing commands (a replica died mid-dispatch, the broker did not
    # acknowledge) every dispatch_sweep_s, once they are dispatch_grace_s old.
    dispatch_sweep_s: float = 30.0
    dispatch_grace_s: float = 90.0
    # Base URL the agents use to download audio files.
    public_url: str = "http://127.0.0.1:8000"
    command_ttl_s: int = 600
    # The server's Ed25519 signing keys and audio-token secret (docs/security.md, "Signed commands"); made
    # at first start when missing (mode 0600). Every replica of the server reads the same file.
    signing_key_file: Path = Field(default_factory=_default_signing_key_file)
    # How often each cluster's 48-hour schedule window is checked and re-sent when it changed or runs short.
    schedule_push_interval_s: int = 3600
    # How far ahead each cluster holds its schedule; it is re-sent when less than half is left.
    schedule_window_h: int = 48
    heartbeat_interval_s: int = 60
    # Raw heartbeats are kept this many days, then deleted by the leader every hour (0 keeps them all):
    # presence history, latest figures and playback are kept apart (broadcast_server/health/retention.py).
    heartbeat_retention_days: int = Field(default=30, ge=0)
    # TLS to the broker (docs/security.md): a CA file turns TLS on; a client certificate is optional.
    mqtt_tls: bool = False
    mqtt_tls_ca_file: Path | None = None
    mqtt_tls_cert_file: Path | None = None
    mqtt_tls_key_file: Path | None = None
    mqtt_tls_check_hostname: bool = True
    # The broker's password and ACL files the server writes from the database, and how the broker is told
    # to re-read them: a command (e.g. "systemctl reload mosquitto"), else SIGHUP to the pid in the pid file.
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    broker_reload_command: str | None = None
    broker_pid_file: Path | None = None
    enrolment_token_ttl_h: int = Field(default=72, ge=1, le=24 * 30)
    tts_voice: str = "vi"
    # The console's fleet map draws on a plain base (works offline); a tile server only if set, e.g.
    # "http://tiles.local/{z}/{x}/{y}.png" (BCAST_MAP_TILE_URL).
    map_tile_url: str | None = None
    target_lufs: float = -16.0
    # The largest recording a user may upload (BCAST_MAX_UPLOAD_BYTES). Every request body is refused (413)
    # past this plus 1 MiB for form fields, while it streams in: nothing larger is read or spooled to disk.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Hosts a CAP alert's recording (<resource><uri>) may be fetched from, separated by commas (the warning
    # agency's file servers; BCAST_CAP_RESOURCE_HOSTS). Empty: only recordings embedded in the alert are aired.
    cap_resource_hosts: str = ""
    # Warning agencies' CAP feeds (Atom or RSS listing CAP documents) the leader reads, separated by commas
    # (BCAST_CAP_FEEDS), every cap_feed_interval_s. Empty: alerts only come in through POST /api/v1/cap.
    cap_feeds: str = ""
    cap_feed_interval_s: float = Field(default=60.0, ge=5.0)
    # Accounts (issue 7). The first administrator is created at `bcast server` start when no account exists.
    admin_username: str | None = None
    admin_password: str | None = None
    session_lifetime_s: int = 12 * 3600  # a console sign-in lasts at most this long
    session_idle_s: int = 2 * 3600  # and ends sooner after this long without a request
    cookie_secure: bool = False  # mark the session cookie Secure (set it when served over HTTPS)

    @field_validator("cap_feeds")
    @classmethod
    def _feeds_are_web_addresses(cls, value: str) -> str:
        for url in split_urls(value):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_FEED_URL_LENGTH:
                raise ValueError(f"{url!r} is not an http(s) URL of at most {MAX_FEED_URL_LENGTH} characters")
        return value

    @property
    def cap_feed_urls(self) -> tuple[str, ...]:
        return split_urls(self.cap_feeds)


MAX_FEED_URL_LENGTH = 2000


def split_urls(value: str) -> tuple[str, ...]:
    """URLs of a setting that lists them separated by commas or spaces."""
    return tuple(value.replace(",", " ").split())


def get_settings(**overrides: Any) -> Settings:
    """Fresh settings from the environment; keyword overrides win, ``None`` means "not given".

    Not cached, so tests and CLI options can change any value per call.
    """
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
