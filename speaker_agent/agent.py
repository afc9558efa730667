"""The cluster agent: takes commands over MQTT, fetches and verifies audio, plays it, reports back.

Network, clock, player, disk and HTTP client are injected so one class serves a real device and each
of the simulator's thousands of clusters alike.

Commands survive power cuts: a command is written to `state.json` before paho acknowledges it to the
broker (after the callback returns), and every command still pending is resumed when the agent starts.
Its outcome goes to the on-disk outbox before the command is marked done, so a restart in between
finds the report and does not act twice.

Late and missed, the policy for a cluster that was cut off or powered down:
- A `play` is carried out as long as its `expires_at` has not passed on the agent's clock when the
  speaker is free for it. If that is after its start time (`play.start_at`, else `issued_at`) it plays
  at once, and its `played` report carries `late_s`, the delay past the start time.
- A `play` whose `expires_at` has passed when it arrives (queued by the broker, resumed from disk) or
  when it could start is never played: it is reported `missed`, with the reason.
- Any other command that arrives expired is `rejected`.
- A live relay (`play.stream`) has a window, [due time, due time + `duration_s`]: a cluster free for it
  late relays what is left of the window (`late_s` as above), one free only after the window is `missed`.
  A scheduled relay item has no fixed window: it relays for its duration from when it starts.

Each connection attempt uses a fresh paho client: paho never resends a message of a dead connection
behind the agent's back, and the outbox alone resends unacknowledged reports, once per connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mqtt_contract import QOS, Channel, InvalidMessage, Topics, decode, encode
from speaker_agent.amplifier import HELD_OFF, AmplifierSwitch, AmplifierSwitchError
from speaker_agent.cache import AudioCache
from speaker_agent.clock import Clock, SystemClock, isoformat, parse_time
from speaker_agent.command_auth import NO_TRUSTED_KEY, CommandGate, CommandRefused, KeySetRefused, Redelivered
from speaker_agent.config import AgentConfig
from speaker_agent.downloader import Downloader, DownloadError, HttpClient
from speaker_agent.mqtt_loop import AsyncioPahoDriver, secure_agent_client
from speaker_agent.outbox import Outbox
from speaker_agent.player import Player, PlayerError, PlayOutcome, StreamError
from speaker_agent.playout.plan import AudioRef
from speaker_agent.playout.runner import Preempted, RelayOutcome, ScheduleRunner
from speaker_agent.playout.store import ScheduleStore, entry_from_message
from speaker_agent.state import AgentState

log = logging.getLogger(__name__)

STOPPED_BEFORE_PLAY = "broadcast stopped by the server before it played"

MAX_QUEUED = 1000  # paho's own queue is bounded; a full queue is seen (rc checked), reports stay in the outbox
MAX_INFLIGHT = 20
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
CONNACK_WAIT_S = 10.0
PRIORITY_RANK = {"emergency": 0, "priority": 1, "normal": 2}
# A live relay that drops reconnects after 1, 2, 4 ... seconds (at most 30), the wait starting again at 1 s
# after a connection that stayed up a minute; it does not reconnect for less than a second of window.
RELAY_RETRY_MIN_S = 1.0
RELAY_RETRY_MAX_S = 30.0
RELAY_STABLE_S = 60.0
RELAY_MIN_S = 1.0


@dataclass
class RelayProgress:
    """How far a relay has got, kept outside the reconnect loop so a preemption still counts what played."""

    first: datetime | None = None  # first sound
    attempt: datetime | None = None  # when the connection now open was opened
    played_s: float = 0.0  # seconds really relayed, gaps left out
    drops: int = 0
    last_error: str = ""

    def cut(self, now: datetime) -> None:
        """Preempted: count the connection open now as relayed until `now`."""
        if self.attempt is not None:
            self.played_s += max(0.0, (now - self.attempt).total_seconds())
            self.first = self.first or self.attempt
            self.attempt = None

    def unreachable(self) -> str:
        """The reason of a relay that relayed nothing at all."""
        return f"stream unreachable: {self.last_error}"[:500]

    def drop_note(self, already_s: float, length_s: float) -> str | None:
        """The reason of a played relay whose stream dropped (None if it never did); `already_s` were relayed
        before a resume, of `length_s` in all."""
        if not self.drops:
            return None
        times = "1 time" if self.drops == 1 else f"{self.drops} times"
        relayed = already_s + self.played_s
        return f"stream dropped {times}; relayed {relayed:.0f} of {length_s:.0f} s; last: {self.last_error}"[:500]


class Speaker:
    """The loudspeaker, one broadcast at a time.

    Waiters take turns by priority, then arrival; an emergency interrupts (cancels) the holder unless
    that is an emergency too."""

    def __init__(self) -> None:
        self.holder: asyncio.Task[Any] | None = None
        self._holder_rank = len(PRIORITY_RANK)
        self._waiters: list[tuple[int, int, asyncio.Future[None], asyncio.Task[Any]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        rank = PRIORITY_RANK.get(priority, PRIORITY_RANK["normal"])
        if rank == 0 and self.holder is not None and self._holder_rank > 0:
            self.holder.cancel()
        if self.holder is None and not self._waiters:
            self.holder, self._holder_rank = task, rank
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (rank, next(self._order), future, task)
        heapq.heappush(self._waiters, entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it was cancelled: pass the turn on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        self.holder, self._holder_rank = None, len(PRIORITY_RANK)
        while self._waiters:
            rank, _, future, task = heapq.heappop(self._waiters)
            if not future.done():
                self.holder, self._holder_rank = task, rank
                future.set_result(None)
                return


class Agent:
    """One cluster. `await start()` connects and keeps reconnecting until `await stop()` or `kill()`."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        http: HttpClient,
        player: Player,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        disk_free: Callable[[], int] | None = None,
        on_report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.player = player
        self.rng = rng or random.Random()
        self.on_report = on_report
        self.topics = Topics(config.topic_root)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = AgentState(config.data_dir / "state.json")
        self.gate = CommandGate(
            config.trusted_public_keys, config.data_dir, self.state, allow_unsigned=config.allow_unsigned_commands
        )
        self.refused = 0  # commands refused since start (unsigned, foreign, replayed, malformed)
        self.cache = AudioCache(
            config.data_dir / "cache",
            max_bytes=config.cache_max_bytes,
            min_free_bytes=config.cache_min_free_bytes,
            disk_free=disk_free,
        )
        self.outbox = Outbox(config.data_dir / "outbox")
        self.downloader = Downloader(
            http,
            self.cache,
            attempts=config.download_attempts,
            base_delay_s=config.download_backoff_s,
            rng=self.rng,
            headers={"User-Agent": config.firmware, "X-Bcast-Cluster": config.cluster_id},
        )
        self.volume = self.state.volume if self.state.volume is not None else config.volume
        _set_player_volume(player, self.volume)
        self.amplifier = AmplifierSwitch(config.amplifier_command)
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.last_error: str | None = NO_TRUSTED_KEY if self.gate.refusing_all else None
        self.playing: str | None = None
        self._started_mono = time.monotonic()
        self._speaker = Speaker()
        # The schedule window on disk and the runner that plays it, network or not.
        self.schedule = ScheduleStore.load(config.data_dir / "schedule.json")
        self.runner = ScheduleRunner(self.schedule, self.clock, self, self._fetch_scheduled, self._report)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_hand: set[str] = set()
        self._repeating: dict[str, asyncio.Task[Any]] = {}  # repeating plays, so a stop ends their repeats
        self._plays: dict[str, tuple[str, asyncio.Task[Any]]] = {}  # play command id -> (broadcast id, task)
        self._halted: set[str] = set()  # play commands cancelled by a stop of their broadcast
        self._pending_acks: dict[int, str] = {}
        self._ack_waiters: dict[int, asyncio.Future[None]] = {}
        self._stopping = False
        self._link_up = True
        # Made only when needed: a simulated fleet holds ten thousand agents, an Event costs ~0.4 KB.
        self._link_back: asyncio.Event | None = None
        self._attempt_over: asyncio.Event | None = None
        self._client: mqtt.Client | None = None
        self._driver: AsyncioPahoDriver | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def cluster_id(self) -> str:
        return self.config.cluster_id

    async def start(self) -> None:
        """Resume commands kept on disk, connect (retrying in the background), start the heartbeat."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._spawn(self._restore_amplifier())
        self._spawn(self._heartbeat_loop())
        self._spawn(self.runner.run())
        self._spawn(self.runner.prefetch())
        self._resume_pending()
        if not self._link_up or not self._try_connect():
            self._schedule_reconnect()

    async def stop(self) -> None:
        """Clean shutdown: retained 'offline' with the current seq, then DISCONNECT (no will is sent)."""
        self._stopping = True
        client = self._client
        if client is not None and self.connected.is_set():
            info = self._publish(Channel.STATUS, self._status("offline"), retain=True)
            if info is not None:
                waiter = asyncio.get_running_loop().create_future()
                self._ack_waiters[info.mid] = waiter
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(waiter, 2)
            client.disconnect()
            for _ in range(100):  # the DISCONNECT goes out on the next writable event; paho then closes
                if client.socket() is None:
                    break
                await asyncio.sleep(0.01)
        await self._cancel_tasks()
        self._drop_client()

    async def kill(self) -> None:
        """Power loss: the socket drops without DISCONNECT (the broker sends the will), memory is lost.

        What is on disk (state, pending commands, outbox, cache) stays for the next Agent on this data_dir."""
        self._stopping = True
        self._drop_client()
        await self._cancel_tasks()

    def link_lost(self) -> None:
        """The modem lost its data link: drop the MQTT connection now, and reconnect only after link_restored().

        No DISCONNECT is sent, so the broker publishes the will; memory and running commands are kept."""
        self._link_up = False
        if self._link_back is None or self._link_back.is_set():
            self._link_back = asyncio.Event()  # the reconnect loop may already wait on an unset one
        self._drop_client()
        self.last_error = "data link lost"
        self._schedule_reconnect()

    def link_restored(self) -> None:
        """The modem has a data link again: reconnect soon (with a little jitter)."""
        self._link_up = True
        if self._link_back is not None:
            self._link_back.set()
        self._schedule_reconnect()

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        if self._reconnect_task is not None:
            tasks.append(self._reconnect_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----------------------------------------------------------------- connection

    def _status(self, state: str) -> dict[str, Any]:
        """A status the agent publishes itself (online, or offline on a clean stop): it carries `ts`.

        The last will is built without `ts` (it is written at connect time), which is how the server
        tells a clean shutdown from a lost connection."""
        return {
            "v": 1,
            "state": state,
            "seq": self.state.seq,
            "firmware": self.config.firmware,
            "ts": isoformat(self.clock.now()),
        }

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.cluster_id,
            clean_session=False,  # the broker keeps our subscription and queued commands while we are away
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(MAX_QUEUED)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        secure_agent_client(client, self.config)  # account (configured or enrolled) and TLS
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _try_connect(self) -> bool:
        """Open a new connection with a fresh client; False if the TCP connect failed at once."""
        assert self._loop is not None
        self._drop_client()
        client = self._new_client()
        self.state.next_seq()
        will = {"v": 1, "state": "offline", "seq": self.state.seq, "firmware": self.config.firmware}
        client.will_set(
            self.topics.for_cluster(self.cluster_id, Channel.STATUS),
            encode(Channel.STATUS, will),
            qos=1,
            retain=True,
        )
        self._client = client
        self._driver = AsyncioPahoDriver(client, self._loop)
        if self._attempt_over is not None:
            self._attempt_over.clear()
        try:
            client.connect(self.config.mqtt_host, self.config.mqtt_port, keepalive=self.config.keepalive_s)
        except (OSError, ValueError) as exc:
            self._drop_client()
            self.last_error = f"MQTT connect failed: {exc}"
            log.info("%s: %s", self.cluster_id, self.last_error)
            return False
        return True

    def _drop_client(self) -> None:
        """Forget the current connection: detach it from the loop and close its socket (no DISCONNECT)."""
        client, driver = self._client, self._driver
        self._client = self._driver = None
        self.connected.clear()
        self.subscribed.clear()
        self._pending_acks.clear()  # unacknowledged reports stay in the outbox and go again on connect
        for waiter in self._ack_waiters.values():
            if not waiter.done():
                waiter.cancel()
        self._ack_waiters.clear()
        if client is None:
            return
        sock = client.socket()
        if driver is not None:
            driver.close()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _schedule_reconnect(self) -> None:
        if self._stopping or self._loop is None:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            return
        self._reconnect_task = self._loop.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping and not self.connected.is_set():
            if not self._link_up:
                if self._link_back is None:
                    self._link_back = asyncio.Event()
                await self._link_back.wait()
                delay = RECONNECT_MIN_S
                # A commune coming back must not reconnect all at once.
                await asyncio.sleep(RECONNECT_MIN_S * self.rng.random())
            else:
                await asyncio.sleep(delay * (0.5 + self.rng.random()))
            if self._stopping or not self._link_up:
                continue
            if self._attempt_over is None:
                self._attempt_over = asyncio.Event()
            if self._try_connect():
                # CONNACK or a drop arrives through the callbacks.
                waits = [asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self._attempt_over.wait())]
                try:
                    await asyncio.wait(waits, timeout=CONNACK_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiting in waits:
                        waiting.cancel()
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if client is not self._client:
            return
        if reason_code.is_failure:
            self.last_error = f"MQTT connection refused: {reason_code}"
            log.warning("%s: %s", self.cluster_id, self.last_error)
            return
        client.subscribe(self.topics.for_cluster(self.cluster_id, Channel.COMMAND), qos=1)
        self._publish(Channel.STATUS, self._status("online"), retain=True)
        self.connected.set()
        for report in self.outbox.pending():
            self._send_report(report)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        if client is self._client:
            self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if client is not self._client:
            return
        self.connected.clear()
        self.subscribed.clear()
        self._pending_acks.clear()
        if self._attempt_over is not None:
            self._attempt_over.set()
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
        if self.on_report is not None:
            self.on_report(report)
        if self.connected.is_set():
            self._send_report(report)
        return report

    def _send_report(self, report: dict[str, Any]) -> None:
        info = self._publish(Channel.REPORT, report)
        if info is not None:
            self._pending_acks[info.mid] = report["id"]

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        if client is not self._client:
            return
        report_id = self._pending_acks.pop(mid, None)
        if report_id is not None:
            self.outbox.remove(report_id)
        waiter = self._ack_waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat message as it would be sent now."""
        return {
            "v": 1,
            "ts": isoformat(self.clock.now()),
            "seq": self.state.seq,
            "uptime_s": round(time.monotonic() - self._started_mono, 3),
            "firmware": self.config.firmware,
            "volume": self.volume,
            "amplifier": self._amplifier_state(),
            "playing": self.playing,
            "cache_free_bytes": self.cache.free_bytes(),
            "link_rssi_dbm": None,  # no modem to ask in the simulator; a device driver fills it in later
            "clock_offset_s": None,  # not measured yet: needs an NTP-style exchange with the server
            "last_error": self.last_error[:500] if self.last_error else None,
        }

    def _amplifier_state(self) -> str:
        if getattr(self.player, "amplifier_fault", False):
            return "fault"
        return "off" if self.state.amplifier_off else "on"

    async def _restore_amplifier(self) -> None:
        """At start the relay is in an unknown state: set it as the last command left it."""
        try:
            await self.amplifier.switch(on=not self.state.amplifier_off)
        except AmplifierSwitchError as exc:
            log.error("%s: %s", self.cluster_id, exc)
            self.last_error = str(exc)[:500]

    async def _switch_amplifier(self, command: dict[str, Any]) -> None:
        """Hold the amplifier off (what plays stops, nothing plays until 'on') or put it back in service."""
        off = command["amplifier"] == "off"
        if off:
            self._stop_playback()
        self.state.set_amplifier_off(off)  # kept even if the relay fails: the agent still plays nothing
        try:
            await self.amplifier.switch(on=not off)
        except AmplifierSwitchError as exc:
            self.last_error = str(exc)[:500]
            self._finish(command["id"], "failed", reason=self.last_error)
        else:
            self._finish(command["id"], "applied", reason=HELD_OFF if off else "amplifier back in service")
        self._send_heartbeat()  # the console shows the amplifier's state now, not a minute later

    def _stop_broadcast(self, broadcast_id: str) -> int:
        """Cancel every play command of one broadcast, wherever it is; each reports itself. How many."""
        halted = 0
        for command_id, (of_broadcast, task) in list(self._plays.items()):
            if of_broadcast == broadcast_id and not task.done():
                self._halted.add(command_id)
                task.add_done_callback(lambda _, c=command_id: self._halted.discard(c))
                task.cancel()
                halted += 1
        return halted

    def _stop_playback(self) -> bool:
        """Cut what plays and end the repeats waiting for their turn (each reports itself); True if any."""
        holder = self._speaker.holder
        stopped = holder is not None and not holder.done()
        if stopped:
            holder.cancel()  # type: ignore[union-attr]
        for waiting in self._repeating.values():
            if waiting is not holder and not waiting.done():
                waiting.cancel()
                stopped = True
        return stopped

    def _send_heartbeat(self) -> None:
        if self.connected.is_set():
            self._publish(Channel.HEARTBEAT, self.heartbeat())

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.connected.wait()
            self._send_heartbeat()
            await asyncio.sleep(self.config.heartbeat_interval_s)

    # ----------------------------------------------------------------- commands

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if client is not self._client:
            return
        try:
            command = decode(Channel.COMMAND, message.payload)
        except InvalidMessage as exc:
            self._reject(message.payload, exc.reason)
            return
        try:
            self.gate.check(command, redelivered=bool(message.dup), now_ts=self.clock.now().timestamp())
        except Redelivered:
            return
        except CommandRefused as exc:
            self._refuse(command["id"], exc.reason)
            return
        if self.state.is_known(command["id"]) or command["id"] in self._in_hand:
            return  # QoS 1 may deliver twice, and a restart may see a command again: act on it once
        if command["type"] == "play" and self.state.was_stopped(
            command["play"]["broadcast_id"], self.clock.now().timestamp()
        ):
            # Published by a dispatch still under way when the server stopped the broadcast: never played.
            self._finish(command["id"], "stopped", broadcast_id=_broadcast_of(command), reason=STOPPED_BEFORE_PLAY)
            return
        if not self._expired_on_arrival(command):
            if not self.state.accept(command):  # on disk before paho acknowledges it to the broker
                # A full disk: a command that cannot be journaled is not taken on; say so at once.
                self.last_error = f"disk full, command refused: {self.state.save_error}"[:500]
                self._finish(command["id"], "failed", broadcast_id=_broadcast_of(command), reason=self.last_error)
                return
            self._begin(command)

    def _expired_on_arrival(self, command: dict[str, Any]) -> bool:
        """Report a command whose time has passed (missed for a play, rejected otherwise); True if so."""
        if parse_time(command["expires_at"]) > self.clock.now():
            return False
        self._finish(
            command["id"],
            "missed" if command["type"] == "play" else "rejected",
            broadcast_id=_broadcast_of(command),
            reason=f"command expired at {command['expires_at']}",
        )
        return True

    def _begin(self, command: dict[str, Any]) -> None:
        command_id = command["id"]
        self._in_hand.add(command_id)
        task = self._spawn(self._execute(command))
        if command["type"] == "play":  # a stop of its broadcast must find it, wherever it is
            self._plays[command_id] = (command["play"]["broadcast_id"], task)
            task.add_done_callback(lambda _: self._plays.pop(command_id, None))

    def _resume_pending(self) -> None:
        """After a restart: finish what was reported already, resume the rest, report the expired."""
        reported = {r.get("command_id") for r in self.outbox.pending() if _is_final(r)}
        for command_id, command in list(self.state.pending.items()):
            if command_id in self._in_hand:
                continue
            if command_id in reported:
                self.state.mark_done(command_id)  # power was cut between the report and the bookkeeping
                continue
            try:
                command = decode(Channel.COMMAND, json.dumps(command).encode())
            except InvalidMessage:
                self.state.mark_done(command_id)
                continue
            if not self._expired_on_arrival(command):
                self._begin(command)

    def _reject(self, payload: bytes, reason: str) -> None:
        claimed = None
        with contextlib.suppress(Exception):
            candidate = json.loads(payload).get("id")
            if isinstance(candidate, str) and candidate:
                claimed = candidate
        self._refuse(claimed, f"malformed command: {reason}")

    def _refuse(self, claimed_id: str | None, reason: str) -> None:
        """Report a command that is not carried out (`rejected`) and count it in the heartbeat's last_error.

        While signatures are enforced an unproven command's id proves nothing, so the report goes under a
        generated id naming the claimed one: a forger must not settle a real delivery as rejected."""
        self.refused += 1
        command_id = claimed_id or ""
        if self.gate.enforcing or not claimed_id:
            command_id = f"refused-{uuid.uuid4().hex[:16]}"
            reason = f"{reason} (command id {claimed_id!r})" if claimed_id else f"{reason} (no command id)"
        self.last_error = f"refused {self.refused} command(s); last: {reason}"[:500]
        log.warning("%s: refused command %s: %s", self.cluster_id, claimed_id, reason)
        self._report(command_id, "rejected", reason=reason[:500])

    def _adopt_keys(self, command: dict[str, Any]) -> None:
        try:
            kids = self.gate.adopt(command)
        except KeySetRefused as exc:
            self._finish(command["id"], "rejected", reason=exc.reason)
            return
        self._finish(command["id"], "applied", reason=f"trusted keys: {', '.join(kids)}")

    def _finish(self, command_id: str, status: str, **fields: Any) -> None:
        self._report(command_id, status, **fields)
        self.state.mark_done(command_id)
        self._in_hand.discard(command_id)

    def _needed_files(self) -> frozenset[str]:
        """Audio that pending commands or the schedule window will play: never evicted from the cache."""
        pending = {
            c["play"]["audio"]["sha256"]
            for c in self.state.pending.values()
            if isinstance(c.get("play"), dict) and "audio" in c["play"]  # a live relay has no file
        }
        scheduled = {
            item.audio.sha256
            for entry in self.schedule.entries
            for item in entry.items
            if item.audio is not None  # a scheduled relay has no file
        }
        return frozenset(pending | scheduled)

    # ----------------------------------------------------------------- schedule

    def _apply_schedule(self, command: dict[str, Any]) -> None:
        window = command["schedule"]
        entries = [entry_from_message(raw) for raw in window["entries"]]
        if not self.schedule.replace(window["version"], parse_time(window["window_end"]), entries):
            self._finish(
                command["id"],
                "rejected",
                reason=f"schedule version {window['version']} is not newer than the stored {self.schedule.version}",
            )
            return
        self.runner.notify()
        self._spawn(self.runner.prefetch())
        self._finish(command["id"], "applied", reason=f"schedule v{window['version']}: {len(entries)} entries")

    async def _fetch_scheduled(self, audio: AudioRef) -> Path:
        path = await self.downloader.fetch(audio.url, audio.sha256, audio.size_bytes, needed=self._needed_files)
        if not self.cache.verify(audio.sha256):  # rotted since it was fetched: fetch again
            path = await self.downloader.fetch(audio.url, audio.sha256, audio.size_bytes, needed=self._needed_files)
        self.cache.touch(audio.sha256)
        return path

    @contextlib.asynccontextmanager
    async def _scheduled_turn(
        self, label: str, cut: Callable[[datetime, datetime], tuple[float, datetime]]
    ) -> AsyncIterator[datetime]:
        """The loudspeaker for one scheduled item (a file or a relay), yielding when it began; an emergency or a
        stop turns the cancellation into Preempted(*cut(now, began)), a player fault is heard at once."""
        await self._speaker.acquire("normal")
        task = asyncio.current_task()
        began = self.clock.now()
        try:
            if self.state.amplifier_off:
                raise PlayerError(HELD_OFF)
            self.playing = label
            yield began
        except asyncio.CancelledError:
            if self._stopping or task is None:
                raise
            task.uncancel()
            raise Preempted(*cut(self.clock.now(), began)) from None
        except PlayerError:
            self._send_heartbeat()
            raise
        finally:
            self.playing = None
            self._speaker.release()

    async def play_scheduled(self, path: Path, duration_s: float, label: str, start_s: float = 0.0) -> PlayOutcome:
        """Play one scheduled item (from `start_s` when resuming) when the speaker is free; an emergency or
        a stop raises Preempted."""
        async with self._scheduled_turn(label, lambda now, began: ((now - began).total_seconds(), began)):
            return await self.player.play(path, duration_s, label=label, start_s=start_s)

    async def relay_scheduled(self, url: str, duration_s: float, label: str, start_s: float = 0.0) -> RelayOutcome:
        """Relay one scheduled live stream for `duration_s - start_s` seconds (the rest, when resuming) from when
        the speaker is free, reconnecting after drops; an emergency or a stop raises Preempted."""
        length = max(0.0, duration_s - start_s)
        progress = RelayProgress()

        def cut(now: datetime, began: datetime) -> tuple[float, datetime]:
            progress.cut(now)
            return progress.played_s, progress.first or began

        async with self._scheduled_turn(label, cut) as started:
            await self._relay_stream(url, length, started + timedelta(seconds=length), label, progress)
        if progress.first is None and length > 0 and start_s <= 0:  # a resumed relay did relay, before
            self.last_error = progress.unreachable()
            raise StreamError(self.last_error)
        return RelayOutcome(
            progress.first or started,
            self.clock.now(),
            progress.played_s,
            progress.drops == 0,
            reason=progress.drop_note(start_s, duration_s),
        )

    async def _execute(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        try:
            if kind == "ping":
                self._finish(command["id"], "pong")
                self._send_heartbeat()  # a technician checking the box sees its state now, not a minute later
            elif kind == "stop" and "stop" in command:
                broadcast_id = command["stop"]["broadcast_id"]
                now = self.clock.now().timestamp()
                self.state.remember_stopped(broadcast_id, parse_time(command["expires_at"]).timestamp(), now)
                halted = self._stop_broadcast(broadcast_id)
                self._finish(
                    command["id"],
                    "stopped",
                    reason=f"stopped broadcast {broadcast_id}" if halted else f"broadcast {broadcast_id} not here",
                )
            elif kind == "stop":
                stopped = self._stop_playback()
                self._finish(
                    command["id"], "stopped", reason="stopped current playback" if stopped else "nothing playing"
                )
            elif kind == "volume":
                self.volume = int(command["volume"])
                self.state.set_volume(self.volume)
                _set_player_volume(self.player, self.volume)
                self._finish(command["id"], "applied", reason=f"volume set to {self.volume}")
                self._send_heartbeat()  # let the server see the new level now, not a minute later
            elif kind == "play":
                await self._play(command)
            elif kind == "amplifier":
                await self._switch_amplifier(command)
            elif kind == "keys":
                self._adopt_keys(command)
            elif kind == "schedule":
                self._apply_schedule(command)
        except asyncio.CancelledError:
            if self._stopping or command["id"] not in self._halted:
                raise
            # Its broadcast was stopped before it began to play (downloading, waiting for its time or the
            # speaker): the play reports that; one cut while playing has reported 'interrupted' itself.
            _uncancel()
            if command["id"] in self._in_hand:
                self._finish(command["id"], "stopped", broadcast_id=_broadcast_of(command), reason=STOPPED_BEFORE_PLAY)
        except Exception as exc:  # a bug or a disk error must not take the agent down
            log.exception("%s: command %s failed", self.cluster_id, command["id"])
            self.last_error = f"internal error: {exc}"[:500]
            self._finish(command["id"], "failed", broadcast_id=_broadcast_of(command), reason=self.last_error)

    async def _play(self, command: dict[str, Any]) -> None:
        """Fetch, then play once, or `repeat.times` times `repeat.interval_s` apart (an alert repeated);
        a live stream is relayed once over its window instead (`play.repeat` does not apply to it)."""
        play = command["play"]
        command_id, broadcast_id = command["id"], play["broadcast_id"]
        if "stream" in play:
            due = parse_time(play["start_at"]) if play.get("start_at") else parse_time(command["issued_at"])
            wait = (due - self.clock.now()).total_seconds()
            if wait > 0:
                await self.clock.sleep(wait)  # a stop meanwhile is reported by _execute: stopped before it played
            await self._relay(command, due)
            return
        audio = play["audio"]
        urgent = play["priority"] == "emergency"
        try:
            path = await self.downloader.fetch(
                audio["url"], audio["sha256"], audio["size_bytes"], needed=self._needed_files, urgent=urgent
            )
        except DownloadError as exc:
            self.last_error = str(exc)[:500]
            self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=str(exc)[:500])
            return
        first_due = parse_time(play["start_at"]) if play.get("start_at") else parse_time(command["issued_at"])
        repeat = play.get("repeat") or {"times": 1, "interval_s": 0}
        times = int(repeat["times"])
        task = asyncio.current_task()
        if times > 1 and task is not None:
            self._repeating[command_id] = task
            task.add_done_callback(lambda _: self._repeating.pop(command_id, None))
        for index in range(self.state.progress.get(command_id, 0), times):  # a restart goes on where it was
            due = first_due + timedelta(seconds=index * int(repeat["interval_s"]))
            wait = (due - self.clock.now()).total_seconds()
            if wait > 0:
                try:
                    await self.clock.sleep(wait)
                except asyncio.CancelledError:
                    if self._stopping or index == 0:
                        raise
                    self._finish(
                        command_id,
                        "stopped",
                        broadcast_id=broadcast_id,
                        reason=f"stopped after {index} of {times} plays",
                    )
                    _uncancel()
                    return
            if not await self._play_once(command, path, due, index + 1, times):
                return

    async def _play_once(self, command: dict[str, Any], path: Path, due: datetime, repetition: int, times: int) -> bool:
        """One play under the speaker lock; reports it. True if it played and more repetitions follow."""
        play = command["play"]
        command_id, broadcast_id = command["id"], play["broadcast_id"]
        audio = play["audio"]
        sha256 = audio["sha256"]
        counted = {"repetition": repetition, "repetitions": times} if times > 1 else {}
        await self._speaker.acquire(play["priority"])
        started: datetime | None = None
        try:
            if repetition == 1 and parse_time(command["expires_at"]) <= self.clock.now():
                self._finish(command_id, "missed", broadcast_id=broadcast_id, reason="expired before it could play")
                return False
            if self.state.amplifier_off:
                self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=HELD_OFF, **counted)
                return False
            if not self.cache.verify(sha256):  # the file rotted or vanished since it was fetched
                try:
                    path = await self.downloader.fetch(
                        audio["url"],
                        sha256,
                        audio["size_bytes"],
                        needed=self._needed_files,
                        urgent=play["priority"] == "emergency",
                    )
                except DownloadError as exc:
                    self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=str(exc)[:500], **counted)
                    return False
            self.cache.touch(sha256)
            self.playing = broadcast_id
            if play.get("volume") is not None:  # forced for this broadcast (e.g. an alert at full level)
                _set_player_volume(self.player, int(play["volume"]))
            started = self.clock.now()
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
                started_at=isoformat(started) if started else None,
                ended_at=isoformat(ended) if started else None,
                played_s=round((ended - started).total_seconds(), 3) if started else 0.0,
                late_s=_late(started, due) if started else None,
                reason="interrupted",
                **counted,
            )
            _uncancel()
            return False
        except PlayerError as exc:
            self.last_error = str(exc)[:500]
            self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=str(exc)[:500], **counted)
            self._send_heartbeat()  # a technician should see an amplifier fault now, not a minute later
            return False
        finally:
            if play.get("volume") is not None:
                _set_player_volume(self.player, self.volume)  # back to the cluster's own level
            self.playing = None
            self._speaker.release()
        fields = {
            "broadcast_id": broadcast_id,
            "started_at": isoformat(outcome.started_at),
            "ended_at": isoformat(outcome.ended_at),
            "played_s": round(outcome.played_s, 3),
            "late_s": _late(outcome.started_at, due),
            **counted,
        }
        if repetition < times:
            self._report(command_id, "played", **fields)  # one report per play; the command goes on
            self.state.set_progress(command_id, repetition)
            return True
        self._finish(command_id, "played", **fields)
        return False

    async def _relay(self, command: dict[str, Any], due: datetime) -> None:
        """Relay a live stream under the speaker lock for what is left of its window [due, due + duration_s],
        reconnecting after each drop; reports the seconds really relayed."""
        play = command["play"]
        command_id, broadcast_id = command["id"], play["broadcast_id"]
        url, length = play["stream"]["url"], float(play["stream"]["duration_s"])
        window_end = due + timedelta(seconds=length)
        await self._speaker.acquire(play["priority"])
        progress = RelayProgress()
        try:
            now = self.clock.now()
            if window_end <= now:
                reason = f"relay window ended at {isoformat(window_end)}"
                self._finish(command_id, "missed", broadcast_id=broadcast_id, reason=reason)
                return
            if parse_time(command["expires_at"]) <= now:
                self._finish(command_id, "missed", broadcast_id=broadcast_id, reason="expired before it could play")
                return
            if self.state.amplifier_off:
                self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=HELD_OFF)
                return
            self.playing = broadcast_id
            if play.get("volume") is not None:  # forced for this broadcast, as for a file
                _set_player_volume(self.player, int(play["volume"]))
            await self._relay_stream(url, length, window_end, broadcast_id, progress)
        except asyncio.CancelledError:
            if self._stopping:
                raise
            # Preempted by an emergency or a stop: as for a file, report it and carry on with the next command.
            ended = self.clock.now()
            progress.cut(ended)
            first = progress.first
            self._finish(
                command_id,
                "stopped",
                broadcast_id=broadcast_id,
                started_at=isoformat(first) if first else None,
                ended_at=isoformat(ended) if first else None,
                played_s=round(progress.played_s, 3),
                late_s=_late(first, due) if first else None,
                reason="interrupted",
            )
            _uncancel()
            return
        except PlayerError as exc:  # not the stream's fault (amplifier, no player): retrying will not help
            self.last_error = str(exc)[:500]
            self._finish(
                command_id,
                "failed",
                broadcast_id=broadcast_id,
                played_s=round(progress.played_s, 3) if progress.first else None,
                reason=str(exc)[:500],
            )
            self._send_heartbeat()
            return
        finally:
            if play.get("volume") is not None:
                _set_player_volume(self.player, self.volume)  # back to the cluster's own level
            self.playing = None
            self._speaker.release()
        if progress.first is None:
            self.last_error = progress.unreachable()
            self._finish(command_id, "failed", broadcast_id=broadcast_id, reason=self.last_error)
            return
        note = progress.drop_note(0.0, length)
        self._finish(
            command_id,
            "played",
            broadcast_id=broadcast_id,
            started_at=isoformat(progress.first),
            ended_at=isoformat(self.clock.now()),
            played_s=round(progress.played_s, 3),
            late_s=_late(progress.first, due),
            **({"reason": note} if note else {}),
        )

    async def _relay_stream(
        self, url: str, length: float, window_end: datetime, label: str, progress: RelayProgress
    ) -> None:
        """The reconnect loop of every relay (a play command's and a scheduled item's): relay `url` until
        `window_end`, at most `length` seconds in all, reconnecting after each drop; counts into `progress`.

        Waits 1, 2, 4 ... 30 s between attempts, never past the window's end. Cancellation and a PlayerError
        that is not the stream's (amplifier, no player) go to the caller; a stream that never opened returns
        with `progress.first` None."""
        backoff = RELAY_RETRY_MIN_S
        while True:
            # Never more than `length` in all: a simulated player may run faster than the clock.
            remaining = min((window_end - self.clock.now()).total_seconds(), length - progress.played_s)
            if remaining <= 0:
                return
            attempt = progress.attempt = self.clock.now()
            try:
                outcome = await self.player.play_stream(url, remaining, label=label)
            except StreamError as exc:
                if exc.played_s > 0 and progress.first is None:
                    progress.first = attempt
                progress.attempt = None
                progress.played_s += exc.played_s
                progress.drops += 1
                progress.last_error = str(exc)
                log.info("%s: relay of %s: %s", self.cluster_id, label, progress.last_error)
                if exc.played_s >= RELAY_STABLE_S:
                    backoff = RELAY_RETRY_MIN_S
                if (window_end - self.clock.now()).total_seconds() - backoff < RELAY_MIN_S:
                    return  # the window would be over before the next attempt
                await self.clock.sleep(backoff)
                backoff = min(backoff * 2, RELAY_RETRY_MAX_S)
                continue
            progress.attempt = None
            progress.played_s += outcome.played_s
            progress.first = progress.first or outcome.started_at
            return


def _is_final(report: dict[str, Any]) -> bool:
    """False for the report of one play of a repeating command that has more plays to go."""
    return not (report.get("status") == "played" and report.get("repetition", 1) < report.get("repetitions", 1))


def _uncancel() -> None:
    """The task was cancelled on purpose (a preemption or stop it has reported): let it finish normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _set_player_volume(player: Player, volume: int) -> None:
    setter = getattr(player, "set_volume", None)
    if callable(setter):
        setter(volume)


def _broadcast_of(command: dict[str, Any]) -> str | None:
    play = command.get("play")
    return play.get("broadcast_id") if isinstance(play, dict) else None


def _late(started: datetime, due: datetime) -> float:
    return round(max(0.0, (started - due).total_seconds()), 3)
