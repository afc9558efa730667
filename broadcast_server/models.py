"""Every database table of the server, in one place (SQLModel on SQLAlchemy 2).

Timestamps are aware UTC datetimes (``UTCDateTime``). Administrative units are retired, never deleted,
so history (clusters, broadcasts, reports) survives re-organisation of the hierarchy. Changing anything
here needs a new Alembic revision under ``broadcast_server/migrations/versions``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

from broadcast_server.accounts.principal import Role
from broadcast_server.db.types import UTCDateTime, utcnow
from broadcast_server.settings import MAX_FEED_URL_LENGTH

# Deterministic constraint names: Alembic needs them to alter constraints later (SQLite batch mode too).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 64  # cluster, command and report ids of the MQTT contract are at most 64 characters
NAME_LENGTH = 200
ERROR_LENGTH = 500  # the contract's limit for reasons and errors


class BulletinKind(StrEnum):
    TEXT = "text"  # read out by text-to-speech
    AUDIO = "audio"  # an uploaded recording
    RELAY = "relay"  # a live stream relayed for a while (tiếp sóng): no audio file, a stream address


class Priority(StrEnum):
    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"


class BulletinStatus(StrEnum):
    """Approval workflow (Thông tư 39): draft → submitted → approved, or submitted → returned → edited → submitted."""

    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting in the approval queue
    APPROVED = "approved"
    RETURNED = "returned"  # sent back with a review comment
    EDITED = "edited"  # changed after a return, not yet submitted again


class BroadcastStatus(StrEnum):
    DISPATCHING = "dispatching"
    DISPATCHED = "dispatched"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    PLAYED = "played"
    FAILED = "failed"
    MISSED = "missed"
    REJECTED = "rejected"
    STOPPED = "stopped"


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


def _new_id() -> str:
    return uuid.uuid4().hex


def _id_column(**kwargs: Any) -> Any:
    """A string id column sized for the contract's ids."""
    return Field(sa_type=String(ID_LENGTH), **kwargs)


# A 64-bit id on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class AdminUnit(SQLModel, table=True):
    """A province, district, commune or village; ``parent_id`` is NULL for a root (a province)."""

    __tablename__ = "admin_unit"
    __table_args__ = (
        UniqueConstraint("parent_id", "name", "level"),
        # NULLs are distinct in a unique constraint, so roots get their own partial unique index.
        Index(
            "uq_admin_unit_root",
            "name",
            "level",
            unique=True,
            sqlite_where=sql_text("parent_id IS NULL"),
            postgresql_where=sql_text("parent_id IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="admin_unit.id", index=True)
    name: str = Field(sa_type=String(NAME_LENGTH))
    level: str = Field(sa_type=String(32))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Cluster(SQLModel, table=True):
    """One loudspeaker cluster (one receiver box), attached to its leaf unit (a village)."""

    __tablename__ = "cluster"

    id: str = _id_column(primary_key=True)
    unit_id: int = Field(foreign_key="admin_unit.id", index=True)
    lat: float
    lon: float
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AudioAsset(SQLModel, table=True):
    """An audio file the agents download, identified by the sha256 of its bytes."""

    __tablename__ = "audio_asset"

    id: str = _id_column(primary_key=True)  # sha256 hex
    size_bytes: int = Field(sa_type=BigInteger)
    duration_s: float
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    format: str = Field(default="mp3", sa_type=String(16))
    storage_key: str = Field(sa_type=String(500))  # path relative to Settings.audio_dir
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Bulletin(SQLModel, table=True):
    """A piece of content to broadcast: a text for text-to-speech or an uploaded recording."""

    __tablename__ = "bulletin"
    __table_args__ = (
        _one_of("kind", BulletinKind),
        _one_of("priority", Priority),
        _one_of("status", BulletinStatus),
    )

    id: str = _id_column(primary_key=True, default_factory=_new_id)
    title: str = Field(sa_type=String(300))
    text: str | None = Field(default=None, sa_type=Text)
    kind: str = Field(sa_type=String(16))
    category: str | None = Field(default=None, sa_type=String(NAME_LENGTH))  # e.g. "Chuyển đổi số"
    priority: str = Field(default=Priority.NORMAL.value, sa_type=String(16))
    status: str = Field(default=BulletinStatus.DRAFT.value, sa_type=String(16))
    audio_asset_id: str | None = _id_column(default=None, foreign_key="audio_asset.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Added in 0004 (accounts and approval). NULL owner: made before accounts, seen only by unscoped accounts.
    owner_unit_id: int | None = Field(default=None, foreign_key="admin_unit.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    reviewed_by: int | None = Field(default=None, foreign_key="app_user.id")
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_comment: str | None = Field(default=None, sa_type=Text)
    # Added in 0011: how a text is read out, kept so that an edit reads it the same way. NULL voice: made
    # before 0011 (the server's BCAST_TTS_VOICE), or a recording; NULL rate: the engine's own speed.
    voice: str | None = Field(default=None, sa_type=String(40))
    rate_wpm: int | None = None
    # Added in 0012 for kind 'relay' (tiếp sóng): the live stream's address and how long to relay it.
    stream_url: str | None = Field(default=None, sa_type=String(2000))
    relay_duration_s: int | None = None


class Broadcast(SQLModel, table=True):
    """One dispatch of a bulletin's audio (or, for a relay, its live stream) to a target set of units and clusters."""

    __tablename__ = "broadcast"
    __table_args__ = (
        _one_of("priority", Priority),
        _one_of("status", BroadcastStatus),
        Index("ix_broadcast_created_at", "created_at"),  # 0002: statistics select broadcasts by period
    )

    id: str = _id_column(primary_key=True, default_factory=_new_id)
    bulletin_id: str = _id_column(foreign_key="bulletin.id", index=True)
    # NULL for a relay (0012): what it plays is the bulletin's stream, not a file.
    audio_asset_id: str | None = _id_column(default=None, foreign_key="audio_asset.id", index=True)
    priority: str = Field(default=Priority.NORMAL.value, sa_type=String(16))
    # {"unit_ids": [...], "cluster_ids": [...]} as the operator chose it; deliveries hold the expansion.
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=BroadcastStatus.DISPATCHING.value, sa_type=String(16))
    # 0006: an alert may repeat (1-10 plays, interval_s apart) and force the output level while it plays.
    repeat_times: int = 1
    repeat_interval_s: int = 0
    volume: int | None = None
    # 0012: when clusters start it (a relay of the 18:00 news set up in the afternoon); NULL: at once.
    start_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """A broadcast's command to one cluster, and how far it got."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("broadcast_id", "cluster_id"), _one_of("state", DeliveryState))

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: str = _id_column(foreign_key="broadcast.id", index=True)
    cluster_id: str = _id_column(foreign_key="cluster.id", index=True)
    command_id: str = _id_column(unique=True)
    state: str = Field(default=DeliveryState.QUEUED.value, sa_type=String(16))
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PlaybackReport(SQLModel, table=True):
    """An agent's report (contract v1 ``report``), stored once: its id is the primary key."""

    __tablename__ = "playback_report"

    id: str = _id_column(primary_key=True)
    cluster_id: str = _id_column(index=True)
    command_id: str = _id_column(index=True)
    broadcast_id: str | None = _id_column(default=None, index=True)
    status: str = Field(sa_type=String(16))
    reported_at: datetime = Field(sa_type=UTCDateTime)  # the agent's "ts"
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    played_s: float | None = None
    late_s: float | None = None
    reason: str | None = Field(default=None, sa_type=String(ERROR_LENGTH))


class Heartbeat(SQLModel, table=True):
    """A cluster's periodic health message (contract v1 ``heartbeat``)."""

    __tablename__ = "heartbeat"

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    cluster_id: str = _id_column(index=True)
    sent_at: datetime = Field(sa_type=UTCDateTime)  # the agent's "ts"
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seq: int
    uptime_s: float
    firmware: str | None = Field(default=None, sa_type=String(64))
    volume: int | None = None
    amplifier: str | None = Field(default=None, sa_type=String(16))
    playing: str | None = _id_column(default=None)
    cache_free_bytes: int | None = Field(default=None, sa_type=BigInteger)
    link_rssi_dbm: float | None = None
    clock_offset_s: float | None = None
    last_error: str | None = Field(default=None, sa_type=String(ERROR_LENGTH))


class PresenceCause(StrEnum):
    """Why a cluster's presence changed (``presence_event.cause``, ``cluster_state.cause``)."""

    STATUS = "status"  # an 'online' status: a new connection
    HEARTBEAT = "heartbeat"  # heartbeats came back on a connection not known to be dead
    WILL = "will"  # the last will (an 'offline' without ts): the connection died
    CLEAN = "clean"  # an 'offline' the agent published itself (with ts) before disconnecting
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"  # no heartbeat for the timeout (default three intervals)
    RECONNECT = "reconnect"  # a newer connection while we thought it online: the old one dropped unseen


class ClusterState(SQLModel, table=True):
    """The latest known state of a cluster: online or not, since when and why, and its last health figures."""

    __tablename__ = "cluster_state"

    cluster_id: str = _id_column(primary_key=True, foreign_key="cluster.id")
    online: bool = False
    seq: int = 0  # last connect counter seen on the status topic
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=String(ERROR_LENGTH))
    firmware: str | None = Field(default=None, sa_type=String(64))
    # Added in 0002 (fleet health).
    cause: str | None = Field(default=None, sa_type=String(24))  # a PresenceCause: why it is as it is
    last_heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    amplifier: str | None = Field(default=None, sa_type=String(16))  # from the last heartbeat: on, off, fault
    clock_offset_s: float | None = None  # from the last heartbeat


class PresenceEvent(SQLModel, table=True):
    """One change of a cluster's presence: the history behind "since when", flapping and uptime."""

    __tablename__ = "presence_event"
    __table_args__ = (
        _one_of("cause", PresenceCause),
        Index("ix_presence_event_cluster_id_at", "cluster_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    cluster_id: str = _id_column(foreign_key="cluster.id")
    online: bool
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    cause: str = Field(sa_type=String(24))
    seq: int = 0


# --- Statistics rollups (0002). Derived data: each can be rebuilt from the tables above. -----------------


class _UnitOutcome(SQLModel):
    """The figures of one broadcast or scheduled airing in one reporting unit (columns of two rollups)."""

    day: date = Field(sa_type=Date)  # local (Asia/Ho_Chi_Minh) date: broadcast created, airing due
    category: str | None = Field(default=None, sa_type=String(NAME_LENGTH))
    priority: str = Field(sa_type=String(16))
    targeted: int = 0
    delivered: int = 0
    played: int = 0
    late: int = 0
    failed: int = 0
    missed: int = 0
    rejected: int = 0
    stopped: int = 0
    played_ms: int = Field(default=0, sa_type=BigInteger)  # sum over clusters that played it to the end
    airtime_ms: int = Field(default=0, sa_type=BigInteger)  # the longest of those plays: the unit's airtime


class StatsBroadcastUnit(_UnitOutcome, table=True):
    """One broadcast's outcome in one reporting unit (commune, or district without communes)."""

    __tablename__ = "stats_broadcast_unit"
    __table_args__ = (Index("ix_stats_broadcast_unit_day_unit_id", "day", "unit_id"),)

    broadcast_id: str = _id_column(primary_key=True, foreign_key="broadcast.id")
    unit_id: int = Field(primary_key=True, foreign_key="admin_unit.id")


class StatsUnitDay(SQLModel, table=True):
    """A reporting unit's figures for one local day, summed from ``stats_broadcast_unit``."""

    __tablename__ = "stats_unit_day"
    __table_args__ = (Index("ix_stats_unit_day_day", "day"),)

    unit_id: int = Field(primary_key=True, foreign_key="admin_unit.id")
    day: date = Field(primary_key=True, sa_type=Date)
    broadcasts: int = 0  # broadcasts that targeted at least one of its clusters
    bulletins_played: int = 0  # of those, played to the end by at least one of its clusters
    emergency_played: int = 0
    targeted: int = 0
    delivered: int = 0
    played: int = 0
    late: int = 0
    failed: int = 0
    missed: int = 0
    rejected: int = 0
    stopped: int = 0
    played_ms: int = Field(default=0, sa_type=BigInteger)
    airtime_ms: int = Field(default=0, sa_type=BigInteger)


class StatsUnitDayCategory(SQLModel, table=True):
    """Bulletins played per category, per reporting unit and local day ('' for no category)."""

    __tablename__ = "stats_unit_day_category"

    unit_id: int = Field(primary_key=True, foreign_key="admin_unit.id")
    day: date = Field(primary_key=True, sa_type=Date)
    category: str = Field(primary_key=True, sa_type=String(NAME_LENGTH))
    bulletins_played: int = 0
    airtime_ms: int = Field(default=0, sa_type=BigInteger)


class StatsAiringUnit(_UnitOutcome, table=True):
    """One scheduled airing's outcome in one reporting unit: the same figures as ``stats_broadcast_unit``."""

    __tablename__ = "stats_airing_unit"
    __table_args__ = (Index("ix_stats_airing_unit_day_unit_id", "day", "unit_id"),)

    airing_id: str = _id_column(primary_key=True, foreign_key="scheduled_airing.id")
    unit_id: int = Field(primary_key=True, foreign_key="admin_unit.id")


class StatsDirtyBroadcast(SQLModel, table=True):
    """Broadcasts and scheduled airings whose outcomes changed since their rollup rows were computed.

    Marked by ingest. The two kinds of id never collide: an airing's id holds '@' and '#', a broadcast's not.
    """

    __tablename__ = "stats_dirty_broadcast"

    broadcast_id: str = _id_column(primary_key=True)
    marked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PresenceClusterDay(SQLModel, table=True):
    """Seconds online of one cluster in one local day, from ``presence_event`` (complete days only)."""

    __tablename__ = "presence_cluster_day"
    __table_args__ = (Index("ix_presence_cluster_day_day", "day"),)

    cluster_id: str = _id_column(primary_key=True, foreign_key="cluster.id")
    day: date = Field(primary_key=True, sa_type=Date)
    online_ms: int = Field(default=0, sa_type=BigInteger)
    drops: int = 0  # online-to-offline changes during the day
    online_at_end: bool = False


class StatsRollupState(SQLModel, table=True):
    """Bookkeeping of the rollup job: one row (id 1)."""

    __tablename__ = "stats_rollup_state"

    id: int = Field(default=1, primary_key=True)
    broadcasts_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # created_at seen up to here
    presence_until: date | None = Field(default=None, sa_type=Date)  # last local day in presence_cluster_day


# --------------------------------------------------------------------------------------------- scheduling


class Programme(SQLModel, table=True):
    """An ordered list of items for a slot (schedule files name programmes by their id)."""

    __tablename__ = "programme"

    id: str = _id_column(primary_key=True)
    title: str = Field(sa_type=String(300))
    on_interrupt: str = Field(default="restart", sa_type=String(16))  # resume | restart | drop
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProgrammeItem(SQLModel, table=True):
    """One item of a programme, in order; its audio comes from a bulletin (spoken text or a recording)."""

    __tablename__ = "programme_item"
    __table_args__ = (UniqueConstraint("programme_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    programme_id: str = _id_column(foreign_key="programme.id", index=True)
    position: int
    title: str = Field(sa_type=String(300))
    priority: str = Field(default="normal", sa_type=String(16))
    bulletin_id: str = _id_column(foreign_key="bulletin.id", index=True)
    source: str | None = Field(default=None, sa_type=String(500))  # audio_file as the schedule file named it
    # True: the item plays an approved bulletin named by id (`bulletin:` in a file, the console's form);
    # False: the bulletin is the item's own, made from the file's text or audio_file when it was applied.
    names_bulletin: bool = False


class TargetGroup(SQLModel, table=True):
    """A named set of units and clusters that slots can target (e.g. the coastal communes)."""

    __tablename__ = "target_group"

    name: str = _id_column(primary_key=True)
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Slot(SQLModel, table=True):
    """When a programme airs: from a local date and time, recurring by an RFC 5545 rule or once."""

    __tablename__ = "slot"

    id: str = _id_column(primary_key=True)
    programme_id: str = _id_column(foreign_key="programme.id", index=True)
    start_date: str = Field(sa_type=String(10))  # local date, YYYY-MM-DD
    start_time: str = Field(sa_type=String(5))  # local time, HH:MM (Asia/Ho_Chi_Minh)
    rule: str | None = Field(default=None, sa_type=String(500))
    until: str | None = Field(default=None, sa_type=String(10))
    layer: str = Field(default="background", sa_type=String(16))
    # {"units": ["Quảng Ngãi/Bình Sơn", ...], "clusters": [...], "groups": [...]} as the file wrote it
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScheduledAiring(SQLModel, table=True):
    """One item of one occurrence of a slot, as agents report it ('<slot>@<UTC start>#<item>').

    Recorded when a window holding it is pushed, so the statistics count scheduled airings as they count
    broadcasts: targeted clusters (``scheduled_airing_target``), and outcomes from the agents' reports.
    """

    __tablename__ = "scheduled_airing"

    id: str = _id_column(primary_key=True)
    slot_id: str = _id_column(index=True)  # no foreign key: the airing stays a fact if its slot is replaced
    position: int  # the item's index in play order (priority items first), as in the id
    bulletin_id: str = _id_column(foreign_key="bulletin.id", index=True)
    title: str = Field(sa_type=String(300))
    priority: str = Field(sa_type=String(16))
    start_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the occurrence's start (the item's due time)


class ScheduledAiringTarget(SQLModel, table=True):
    """A cluster that was sent a scheduled airing in its window (and not told since that it was removed)."""

    __tablename__ = "scheduled_airing_target"

    airing_id: str = _id_column(primary_key=True, foreign_key="scheduled_airing.id")
    cluster_id: str = _id_column(primary_key=True, foreign_key="cluster.id", index=True)


class ClusterSchedule(SQLModel, table=True):
    """The schedule window last sent to a cluster, so a push sends only what changed."""

    __tablename__ = "cluster_schedule"

    cluster_id: str = _id_column(primary_key=True, foreign_key="cluster.id")
    version: int = Field(sa_type=BigInteger)
    digest: str = Field(sa_type=String(64))
    window_end: datetime = Field(sa_type=UTCDateTime)
    pushed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ------------------------------------------------------------------------------- accounts and audit (0004)

USERNAME_LENGTH = 64


class User(SQLModel, table=True):
    """An account: its role and the unit whose subtree it may touch (NULL: the whole tree)."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    __table_args__ = (_one_of("role", Role),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(USERNAME_LENGTH), unique=True)
    display_name: str = Field(default="", sa_type=String(NAME_LENGTH))
    password_hash: str = Field(sa_type=String(255))
    role: str = Field(sa_type=String(16))
    scope_unit_id: int | None = Field(default=None, foreign_key="admin_unit.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """A token for integrations, acting as its user; only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(sa_type=String(NAME_LENGTH))
    token_hash: str = Field(sa_type=String(64), unique=True)  # sha256 hex of the plain token
    prefix: str = Field(sa_type=String(16))  # the first characters, so people can tell tokens apart
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A console sign-in, kept on the server; the row id is the SHA-256 of the cookie value."""

    __tablename__ = "web_session"

    id: str = Field(sa_type=String(64), primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    csrf_token: str = Field(sa_type=String(64))
    ip: str | None = Field(default=None, sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class LoginAttempt(SQLModel, table=True):
    """One sign-in attempt, kept in the database so every server replica throttles alike."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    username: str = Field(sa_type=String(USERNAME_LENGTH))
    ip: str = Field(sa_type=String(64))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    succeeded: bool = False


class AuditEntry(SQLModel, table=True):
    """One audited action: who, when, from where, what. Append-only (a PostgreSQL trigger refuses changes)."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(USERNAME_LENGTH))  # username, or "cli" / "system"
    user_id: int | None = Field(default=None, index=True)  # no foreign key: entries outlive accounts
    role: str | None = Field(default=None, sa_type=String(16))
    via: str = Field(sa_type=String(16))  # session, token, cli, system
    ip: str | None = Field(default=None, sa_type=String(64))
    action: str = Field(sa_type=String(64), index=True)  # e.g. "bulletin.approve"
    object_type: str = Field(sa_type=String(32))
    object_id: str | None = Field(default=None, sa_type=String(ID_LENGTH))
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    unit_id: int | None = Field(default=None, index=True)  # the unit concerned, for scoping; no foreign key


# ------------------------------------------------------------------------------------------ broker security


class ClusterCredential(SQLModel, table=True):
    """A cluster's MQTT account: only the broker's ``$7$`` hash is kept, never the password.

    A cluster has at most one credential not revoked; re-enrolment revokes the old one, so the rows are
    its history."""

    __tablename__ = "cluster_credential"
    __table_args__ = (
        Index(
            "uq_cluster_credential_active",
            "cluster_id",
            unique=True,
            sqlite_where=sql_text("revoked_at IS NULL"),
            postgresql_where=sql_text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: str = _id_column(foreign_key="cluster.id", index=True)
    username: str = Field(sa_type=String(100))
    broker_hash: str = Field(sa_type=String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EnrolmentToken(SQLModel, table=True):
    """A one-time token a technician gives a new receiver box; only its SHA-256 is kept."""

    __tablename__ = "enrolment_token"

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: str = _id_column(foreign_key="cluster.id", index=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, sa_type=String(NAME_LENGTH))  # account name, or "cli"


class BrokerServerAccount(SQLModel, table=True):
    """The server's own MQTT account(s): everything under the topic root. Only the broker hash is kept."""

    __tablename__ = "broker_server_account"

    username: str = Field(sa_type=String(100), primary_key=True)
    broker_hash: str = Field(sa_type=String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CapAlert(SQLModel, table=True):
    """A CAP alert received from a warning agency, what was done with it, and the document as it came.

    (sender, identifier) is unique: CAP says the pair names one alert, so a repeat is answered, not aired."""

    __tablename__ = "cap_alert"
    __table_args__ = (UniqueConstraint("sender", "identifier"),)

    id: str = _id_column(primary_key=True, default_factory=_new_id)
    sender: str = Field(sa_type=String(255))
    identifier: str = Field(sa_type=String(255))
    sent: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(sa_type=String(16))
    msg_type: str = Field(sa_type=String(16))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    action: str = Field(sa_type=String(16))  # air, review, cancel, record (cap/policy.py)
    reason: str = Field(sa_type=String(500))
    bulletin_id: str | None = _id_column(default=None, foreign_key="bulletin.id")
    broadcast_id: str | None = _id_column(default=None, foreign_key="broadcast.id")
    clusters: int = 0  # clusters inside its area (aired: sent it; cancel: told to stop)
    document: str = Field(sa_type=Text)


class CapFeedState(SQLModel, table=True):
    """What the leader's last reads of one CAP feed gave, so that any replica's console can show it.

    Written by cap/feed_state.py at every poll; a feed no longer configured keeps its row (and is not shown)."""

    __tablename__ = "cap_feed_state"

    url: str = Field(sa_type=String(MAX_FEED_URL_LENGTH), primary_key=True)
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # when the last poll began
    last_read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the last poll that read the feed
    entries: int = 0  # entries the last read listed
    alerts: int = 0  # new alerts handled from it, all polls together (repeats not counted)
    last_alert_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    problem: str | None = Field(default=None, sa_type=String(32))  # of the latest poll (None: it went well)
    last_error_kind: str | None = Field(default=None, sa_type=String(32))  # cap/feed_state.py FeedProblem
    last_error: str | None = Field(default=None, sa_type=String(ERROR_LENGTH))  # the feed's, or one entry's
    last_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
