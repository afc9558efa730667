"""The running server's moving parts (database, MQTT bus, ingest, schedule pusher), started and stopped together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from broadcast_server.cap.feed import FeedPoller, FeedReader, FeedSource
from broadcast_server.cap.service import SpeechSettings
from broadcast_server.db.engine import make_engine
from broadcast_server.health.retention import HeartbeatPruner
from broadcast_server.messaging.mqtt_bus import MqttBus
from broadcast_server.replicas.dispatch_sweeper import DispatchSweeper
from broadcast_server.replicas.leadership import Leadership
from broadcast_server.scheduling.push import SchedulePusher
from broadcast_server.services.ingest import IngestWorker
from broadcast_server.settings import Settings
from speaker_agent.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    bus: MqttBus | None = None
    ingest: IngestWorker | None = None
    pusher: SchedulePusher | None = None
    # With replicas on PostgreSQL only the leader pushes schedules and resends unfinished broadcasts.
    leadership: Leadership | None = None
    sweeper: DispatchSweeper | None = None
    pruner: HeartbeatPruner | None = None  # on the leader: raw heartbeats past their retention
    cap_feeds: FeedPoller | None = None  # on the leader, when BCAST_CAP_FEEDS names any: alerts pulled
    # What time it is for dispatch and schedules: the system clock, or the demo's accelerated one.
    clock: Clock = field(default_factory=SystemClock)
    push_poll_s: float = 1.0
    # The audio route's files by sha256 (api.routes_audio.StoredAudio, or the lookup in progress): assets
    # never change, so this never goes stale.
    audio_files: dict[str, Any] = field(default_factory=dict)
    started: bool = field(default=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine | None = None) -> Runtime:
        return cls(settings=settings, engine=engine or make_engine(settings.database_url))

    def start(self, *, with_mqtt: bool = True) -> None:
        """Connect to the broker and start storing what clusters send."""
        if with_mqtt:
            s = self.settings
            self.leadership = Leadership(self.engine, name=s.mqtt_client_id)
            self.bus = MqttBus.from_settings(s)
            from broadcast_server.health.monitor import HealthMonitor

            health = HealthMonitor.from_environment(self.engine, heartbeat_interval_s=s.heartbeat_interval_s)
            self.ingest = IngestWorker(self.engine, self.bus.events, health=health, acknowledge=self.bus.acknowledge)
            self.ingest.start()
            self.bus.start()
            self.pusher = SchedulePusher(
                self.engine,
                self.bus,
                s.public_url,
                self.clock.now,
                interval=timedelta(seconds=s.schedule_push_interval_s),
                window=timedelta(hours=s.schedule_window_h),
                poll_s=self.push_poll_s,
                is_leader=self.leadership.check,
            )
            self.pusher.start()
            # In a thread: resending waits for the broker's acknowledgements.
            self.sweeper = DispatchSweeper(
                self.engine,
                self.bus,
                s.public_url,
                self.clock.now,
                self.leadership,
                every_s=s.dispatch_sweep_s,
                grace=timedelta(seconds=s.dispatch_grace_s),
            )
            self.sweeper.start()
            days = s.heartbeat_retention_days
            self.pruner = HeartbeatPruner(
                self.engine,
                self.clock.now,
                self.leadership.check,
                keep=timedelta(days=days) if days else None,
            )
            self.pruner.start()
            if s.cap_feeds.strip():
                speech = SpeechSettings.from_settings(s)
                source = FeedSource(s.cap_feed_urls, speech.recordings.allowed_hosts)
                reader = FeedReader(self.engine, self.bus, source, speech, s.public_url, self.clock.now)
                self.cap_feeds = FeedPoller(reader, self.leadership.check, every_s=s.cap_feed_interval_s)
                self.cap_feeds.start()
        self.started = True

    def stop(self) -> None:
        if self.cap_feeds is not None:
            self.cap_feeds.stop()
        if self.pruner is not None:
            self.pruner.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.pusher is not None:
            self.pusher.stop()
        if self.leadership is not None:
            self.leadership.release()  # another replica takes the lead at once
        if self.bus is not None:
            self.bus.stop()
        if self.ingest is not None:
            self.ingest.stop()
        self.started = False
