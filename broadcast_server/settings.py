"""Server configuration, read from ``BCAST_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_dir() -> Path:
    return Path(user_data_dir("bcast"))


def _default_database_url() -> str:
    return f"sqlite:///{_data_dir() / 'bcast.sqlite3'}"


def _default_audio_dir() -> Path:
    return _data_dir() / "audio"


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
    # Base URL the agents use to download audio files.
    public_url: str = "http://127.0.0.1:8000"
    command_ttl_s: int = 600
    # How often each cluster's 48-hour schedule window is checked and re-sent when it changed or runs short.
    schedule_push_interval_s: int = 3600
    # How far ahead each cluster holds its schedule; it is re-sent when less than half is left.
    schedule_window_h: int = 48
    heartbeat_interval_s: int = 60
    tts_voice: str = "vi"
    target_lufs: float = -16.0


def get_settings(**overrides: Any) -> Settings:
    """Fresh settings from the environment; keyword overrides win, ``None`` means "not given".

    Not cached, so tests and CLI options can change any value per call.
    """
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
