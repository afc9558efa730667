"""The cluster agent: takes commands over MQTT, fetches and verifies audio, plays it, reports back.

Network, clock, player and HTTP client are injected so one class serves a real device and each of
the simulator's thousands of clusters alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mqtt_contract import QOS, Channel, InvalidMessage, Topics, decode, encode
from speaker_agent.cache import AudioCache
from speaker_agent.clock import Clock, SystemClock, isoformat, parse_time
from speaker_agent.config import AgentConfig
from speaker_agent.downloader import Downloader, DownloadError
from speaker_agent.mqtt_loop import AsyncioPahoDriver
from speaker_agent.outbox import Outbox
from speaker_agent.player import Player, PlayerError
from speaker_agent.state import AgentState

log = logging.getLogger(__name__)

MAX_QUEUED = 1000  # paho's own queue is bounded; a full queue is seen (rc checked), reports stay in the outbox
MAX_INFLIGHT = 20
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0


class Agent:
    """One cluster. `await start()` connects and keeps reconnecting until `await stop()`."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        http: httpx.AsyncClient,
        player: Player,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.player = player
        self.rng = rng or random.Random()
        self.topics = Topics(config.topic_root)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = AgentState(config.data_dir / "state.json")
        self.cache = AudioCache(config.data_dir / "cache")
        self.outbox = Outbox(config.data_dir / "outbox")
        self.downloader = Downloader(http, self.cache, attempts=config.download_attempts, rng=self.rng)
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self.playing: str | None = None
        self._started_mono = time.monotonic()
        self._speaker = asyncio.Lock()
        self._current_play: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_hand: set[str] = set()
        self._pending_acks: dict[int, str] = {}
        self._stopping = False
        self._client: mqtt.Client | None = None
        self._driver: AsyncioPahoDriver | None = None
        self._reconnect_task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def cluster_id(self) -> str:
        return self.config.cluster_id

    async def start(self) -> None:
        """Connect (retrying in the background if the broker is not there) and start the heartbeat."""
        loop = asyncio.get_running_loop()
        self._stopping = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.cluster_id,
            clean_session=False,  # the broker keeps our subscription and queued commands while we are away
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(MAX_QUEUED)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        if self.config.mqtt_username:
            client.username_pw_set(self.config.mqtt_username, self.config.mqtt_password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        self._driver = AsyncioPahoDriver(client, loop)
        self._spawn(self._heartbeat_loop())
        if not self._try_connect(first=True):
            self._schedule_reconnect()

    async def stop(self) -> None:
        """Clean shutdown: retained 'offline' with the current seq, then DISCONNECT (no will is sent)."""
        self._stopping = True
        client = self._client
        if client is not None and self.connected.is_set():
            info = client.publish(
                self.topics.for_cluster(self.cluster_id, Channel.STATUS),
                encode(Channel.STATUS, self._status("offline")),
                qos=1,
                retain=True,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish, 2), 3)
            client.disconnect()
            await asyncio.sleep(0)
        await self._cancel_tasks()
        if self._driver is not None:
            self._driver.close()
        self.connected.clear()

    async def kill(self) -> None:
        """Abrupt loss (power cut, cable cut): drop the socket without DISCONNECT, so the broker sends the will."""
        self._stopping = True
        client = self._client
        if client is not None:
            sock = client.socket()
            if self._driver is not None:
                self._driver.close()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        await self._cancel_tasks()
        self.connected.clear()

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        if self._reconnect_task is not None:
            tasks.append(self._reconnect_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----------------------------------------------------------------- connection

    def _status(self, state: str) -> dict[str, Any]:
        status: dict[str, Any] = {"v": 1, "state": state, "seq": self.state.seq, "firmware": self.config.firmware}
        if state == "online" or not self._stopping:
            status["ts"] = isoformat(self.clock.now())
        return status

    def _try_connect(self, *, first: bool) -> bool:
        client = self._client
        assert client is not None
        self.state.next_seq()
        will = {"v": 1, "state": "offline", "seq": self.state.seq, "firmware": self.config.firmware}
        client.will_set(
            self.topics.for_cluster(self.cluster_id, Channel.STATUS),
            encode(Channel.STATUS, will),
            qos=1,
            retain=True,
        )
        try:
            if first:
                client.connect(self.config.mqtt_host, self.config.mqtt_port, keepalive=self.config.keepalive_s)
            else:
                client.reconnect()
        except (OSError, ValueError) as exc:
            self.last_error = f"MQTT connect failed: {exc}"
            log.info("%s: %s", self.cluster_id, self.last_error)
            return False
        return True

    def _schedule_reconnect(self) -> None:
        if self._stopping or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping and not self.connected.is_set():
            await asyncio.sleep(delay * (0.5 + self.rng.random()))
            if self._stopping:
                return
            if self._try_connect(first=False):
                # CONNACK (or a failure) arrives through the callbacks; give it time before trying again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.connected.wait(), timeout=10)
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self.last_error = f"MQTT connection refused: {reason_code}"
            log.warning("%s: %s", self.cluster_id, self.last_error)
            return
        client.subscribe(self.topics.for_cluster(self.cluster_id, Channel.COMMAND), qos=1)
        self._publish(Channel.STATUS, self._status("online"), retain=True)
        self.connected.set()
        for report in self.outbox.pending():
            self._send_report(report)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connected.clear()
        self._pending_acks.clear()  # unacknowledged reports stay in the outbox and go again on connect
        if not self._stopping:
            self.last_error = f"MQTT connection lost: {reason_code}"
            self._schedule_reconnect()

    def _publish(
        self, channel: Channel, message: dict[str, Any], *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        client = self._client
        if client is None:
            return None
        info = client.publish(
            self.topics.for_cluster(self.cluster_id, channel), encode(channel, message), qos=QOS[channel], retain=retain
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.last_error = f"publish on {channel.value} failed: {mqtt.error_string(info.rc)}"
            return None
        return info

    # ----------------------------------------------------------------- reports and heartbeats

    def _report(self, command_id: str, status: str, **fields: Any) -> dict[str, Any]:
        report: dict[str, Any] = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "ts": isoformat(self.clock.now()),
            "command_id": command_id[:64],
            "status": status,
        }
        report.update({k: v for k, v in fields.items() if v is not None})
        encode(Channel.REPORT, report)  # refuse to store anything the server would refuse
        self.outbox.put(report)
        if self.connected.is_set():
            self._send_report(report)
        return report

    def _send_report(self, report: dict[str, Any]) -> None:
        info = self._publish(Channel.REPORT, report)
        if info is not None:
            self._pending_acks[info.mid] = report["id"]

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        report_id = self._pending_acks.pop(mid, None)
        if report_id is not None:
            self.outbox.remove(report_id)

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat message as it would be sent now."""
        return {
            "v": 1,
            "ts": isoformat(self.clock.now()),
            "seq": self.state.seq,
            "uptime_s": round(time.monotonic() - self._started_mono, 3),
            "firmware": self.config.firmware,
            "volume": self.config.volume,
            "amplifier": "fault" if getattr(self.player, "amplifier_fault", False) else "on",
            "playing": self.playing,
            "cache_free_bytes": self.cache.free_bytes(),
            "link_rssi_dbm": None,
            "clock_offset_s": None,
            "last_error": self.last_error[:500] if self.last_error else None,
        }

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.connected.wait()
            self._publish(Channel.HEARTBEAT, self.heartbeat())
            await asyncio.sleep(self.config.heartbeat_interval_s)

    # ----------------------------------------------------------------- commands

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = decode(Channel.COMMAND, message.payload)
        except InvalidMessage as exc:
            self._reject(message.payload, exc.reason)
            return
        command_id = command["id"]
        if self.state.is_done(command_id) or command_id in self._in_hand:
            return  # QoS 1 may deliver twice; a command is acted on once
        now = self.clock.now()
        if parse_time(command["expires_at"]) <= now:
            # A play that arrives too late (the cluster was cut off) was missed; anything else is refused.
            self._finish(
                command_id,
                "missed" if command["type"] == "play" else "rejected",
                broadcast_id=_broadcast_of(command),
                reason=f"command expired at {command['expires_at']}",
            )
            return
        self._in_hand.add(command_id)
        self._spawn(self._execute(command))

    def _reject(self, payload: bytes, reason: str) -> None:
        command_id = "unknown"
        with contextlib.suppress(Exception):
            candidate = json.loads(payload).get("id")
            if isinstance(candidate, str) and candidate:
                command_id = candidate
        log.warning("%s: refused command %s: %s", self.cluster_id, command_id, reason)
        self._report(command_id, "rejected", reason=f"malformed command: {reason}"[:500])

    def _finish(self, command_id: str, status: str, **fields: Any) -> None:
        self._report(command_id, status, **fields)
        self.state.mark_done(command_id)
        self._in_hand.discard(command_id)

    async def _execute(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        if kind == "ping":
            self._finish(command["id"], "pong")
        elif kind == "stop":
            stopped = self._current_play is not None and not self._current_play.done()
            if stopped:
                self._current_play.cancel()  # type: ignore[union-attr]
            self._finish(command["id"], "stopped", reason="stopped current playback" if stopped else "nothing playing")
        elif kind == "play":
            await self._play(command)

    async def _play(self, command: dict[str, Any]) -> None:
        play = command["play"]
        command_id, broadcast_id = command["id"], play["broadcast_id"]
        audio = play["audio"]
        try:
            path = await self.downloader.fetch(audio["url"], audio["sha256"], audio["size_bytes"])
        except DownloadError as exc:
            self.last_error = str(exc)[:500]
            self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=str(exc)[:500])
            return
        due = parse_time(play["start_at"]) if play.get("start_at") else parse_time(command["issued_at"])
        wait = (due - self.clock.now()).total_seconds()
        if wait > 0:
            await self.clock.sleep(wait)
        if play["priority"] == "emergency" and self._current_play is not None and not self._current_play.done():
            self._current_play.cancel()
        async with self._speaker:
            if parse_time(command["expires_at"]) <= self.clock.now():
                self._finish(command_id, "missed", broadcast_id=broadcast_id, reason="expired while waiting to play")
                return
            task = asyncio.current_task()
            self._current_play = task
            self.playing = broadcast_id
            started = self.clock.now()
            try:
                outcome = await self.player.play(path, float(audio["duration_s"]), label=broadcast_id)
            except asyncio.CancelledError:
                if self._stopping:
                    raise
                # Preempted by an emergency or a stop: report it, and carry on with the next command.
                ended = self.clock.now()
                self._finish(
                    command_id,
                    "stopped",
                    broadcast_id=broadcast_id,
                    started_at=isoformat(started),
                    ended_at=isoformat(ended),
                    played_s=round((ended - started).total_seconds(), 3),
                    late_s=_late(started, due),
                    reason="interrupted",
                )
                _uncancel(task)
                return
            except PlayerError as exc:
                self.last_error = str(exc)[:500]
                self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=str(exc)[:500])
                return
            finally:
                self.playing = None
                self._current_play = None
            self._finish(
                command_id,
                "played",
                broadcast_id=broadcast_id,
                started_at=isoformat(outcome.started_at),
                ended_at=isoformat(outcome.ended_at),
                played_s=round(outcome.played_s, 3),
                late_s=_late(outcome.started_at, due),
            )


def _broadcast_of(command: dict[str, Any]) -> str | None:
    play = command.get("play")
    return play.get("broadcast_id") if isinstance(play, dict) else None


def _late(started: datetime, due: datetime) -> float:
    return round(max(0.0, (started - due).total_seconds()), 3)


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.uncancel()
