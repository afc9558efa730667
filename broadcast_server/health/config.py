"""Fleet-health settings, read from ``BCAST_HEALTH_*`` environment variables (besides the server's own)."""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from broadcast_server.health.alerts import AlertPolicy


class HealthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BCAST_HEALTH_", extra="ignore")

    missed_heartbeats: float = 3.0  # offline after this many heartbeat intervals without one
    webhook_url: str | None = None  # alerts are POSTed here as JSON; none: alerts are only logged
    offline_alert_after_s: float = 900.0
    commune_min_online_share: float = 0.7
    storm_window_s: float = 120.0
    storm_min_clusters: int = 10
    storm_min_fraction: float = 0.2
    settle_s: float = 300.0
    clock_offset_threshold_s: float = 5.0  # the fleet view lists clusters whose clock is further off

    def alert_policy(self) -> AlertPolicy:
        return AlertPolicy(
            offline_after_s=self.offline_alert_after_s,
            commune_min_online_share=self.commune_min_online_share,
            storm_window_s=self.storm_window_s,
            storm_min_clusters=self.storm_min_clusters,
            storm_min_fraction=self.storm_min_fraction,
            settle_s=self.settle_s,
        )


def get_health_settings(**overrides: Any) -> HealthSettings:
    return HealthSettings(**{k: v for k, v in overrides.items() if v is not None})
