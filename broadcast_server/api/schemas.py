"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from broadcast_server.accounts.principal import Role
from broadcast_server.domain.reading import MAX_RATE_WPM, MIN_RATE_WPM
from broadcast_server.domain.relay import MAX_RELAY_S, MAX_STREAM_URL_LENGTH, MIN_RELAY_S
from broadcast_server.models import Priority

# A key of a database row as a request may name it: the databases hold signed 64-bit integers, and a larger
# number must be refused (422), not passed on to fail in the driver (OverflowError, a 500).
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class BulletinCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=20_000, description="Vietnamese text, read out by text-to-speech.")
    category: str | None = Field(default=None, max_length=200, examples=["Chuyển đổi số"])
    priority: Priority = Priority.NORMAL
    voice: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]{1,40}$",
        examples=["vi", "vi-vn-x-central", "vi-vn-x-south"],
        description="A voice of the server's TTS engine (GET /api/v1/bulletins/voices); default: BCAST_TTS_VOICE.",
    )
    rate_wpm: int | None = Field(
        default=None,
        ge=MIN_RATE_WPM,
        le=MAX_RATE_WPM,
        description="Reading speed in words a minute; default: the engine's own (espeak-ng: 175).",
    )
    owner_unit_id: RowId | None = Field(
        default=None, description="Unit the bulletin belongs to (default: the caller's own unit); must be in scope."
    )


class RelayCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300, examples=["Tiếp sóng chương trình thời sự VOV1"])
    stream_url: str = Field(
        min_length=8,
        max_length=MAX_STREAM_URL_LENGTH,
        examples=["https://stream.example.vn/vov1.mp3"],
        description="http(s) address of the live stream (Icecast/Shoutcast MP3 or AAC, or HLS); no password in it.",
    )
    duration_s: int = Field(ge=MIN_RELAY_S, le=MAX_RELAY_S, description="How long clusters relay it (1 min to 4 h).")
    category: str | None = Field(default=None, max_length=200)
    priority: Priority = Priority.NORMAL
    owner_unit_id: RowId | None = Field(
        default=None, description="Unit the bulletin belongs to (default: the caller's own unit); must be in scope."
    )


class BulletinEdit(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    category: str | None = Field(default=None, max_length=200)
    voice: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,40}$", description="Default: the bulletin's own.")
    rate_wpm: int | None = Field(
        default=None,
        ge=MIN_RATE_WPM,
        le=MAX_RATE_WPM,
        description="Words a minute; left out: the bulletin's own; null: the engine's own speed.",
    )
    stream_url: str | None = Field(
        default=None, min_length=8, max_length=MAX_STREAM_URL_LENGTH, description="A relay's stream address."
    )
    duration_s: int | None = Field(default=None, ge=MIN_RELAY_S, le=MAX_RELAY_S, description="A relay's length.")


class BulletinReturn(BaseModel):
    comment: str = Field(min_length=1, max_length=5000, description="What to change, for the author.")


class BulletinOut(BaseModel):
    id: str
    title: str
    text: str | None
    kind: str
    category: str | None
    priority: str
    status: str
    audio_asset_id: str | None
    duration_s: float | None = None
    created_at: datetime
    owner_unit_id: int | None = None
    created_by: int | None = None
    reviewed_by: int | None = None
    reviewed_at: datetime | None = None
    review_comment: str | None = None
    voice: str | None = None
    rate_wpm: int | None = None
    stream_url: str | None = Field(default=None, description="A live relay's stream address (kind 'relay').")
    relay_duration_s: int | None = None


class VoiceOut(BaseModel):
    id: str
    label: str = Field(description="How people see it, in Vietnamese (e.g. 'giọng nam miền Nam').")
    default: bool = Field(description="The server's BCAST_TTS_VOICE: used when a bulletin names none.")


class VoicesOut(BaseModel):
    engine: str
    voices: list[VoiceOut]
    min_rate_wpm: int
    max_rate_wpm: int


class TargetIn(BaseModel):
    unit_ids: list[RowId] = Field(default_factory=list, max_length=10_000)
    cluster_ids: list[str] = Field(default_factory=list, max_length=200_000)


class BroadcastCreate(BaseModel):
    bulletin_id: str = Field(min_length=1, max_length=64)
    target: TargetIn
    ttl_s: int | None = Field(
        default=None,
        ge=10,
        le=7 * 24 * 3600,
        description="How long clusters may still start it; default from settings.",
    )
    repeat_times: int = Field(default=1, ge=1, le=10, description="Play it this many times (an alert repeated).")
    repeat_interval_min: int | None = Field(
        default=None, ge=1, le=1440, description="Minutes between plays; required when repeat_times > 1."
    )
    volume: int | None = Field(
        default=None, ge=0, le=100, description="Output level forced while it plays; the cluster's own after."
    )
    start_at: datetime | None = Field(
        default=None,
        examples=["2026-12-08T18:00:00+07:00"],
        description="When clusters start it (with a time zone offset; at most 7 days ahead); default: at once. "
        "Clusters hold the command until then, network or not; ttl_s counts from this time.",
    )

    @model_validator(mode="after")
    def _interval_with_repeats(self) -> BroadcastCreate:
        if self.repeat_times > 1 and self.repeat_interval_min is None:
            raise ValueError("repeat_interval_min is required when repeat_times > 1")
        return self


class CoverageRowOut(BaseModel):
    name: str
    clusters: int
    played: int
    not_played: int
    offline: int


class BroadcastOut(BaseModel):
    id: str
    bulletin_id: str
    priority: str
    status: str
    created_at: datetime
    expires_at: datetime
    start_at: datetime | None = None
    targeted: int
    states: dict[str, int]


class BroadcastStopOut(BaseModel):
    broadcast_id: str
    never_sent: int = Field(description="Deliveries settled 'stopped' before their command went out.")
    told: int = Field(description="Clusters sent a stop of this broadcast (their play reports 'stopped').")
    acknowledged: int = Field(description="Of those, stops the MQTT broker took (not yet carried out).")


class CoverageOut(BaseModel):
    broadcast_id: str
    communes: list[CoverageRowOut]
    total: CoverageRowOut
    states: dict[str, int]


class UnitOut(BaseModel):
    id: int
    parent_id: int | None
    name: str
    level: str


class ClusterOut(BaseModel):
    id: str
    unit_id: int
    lat: float
    lon: float
    online: bool | None = None
    last_seen_at: datetime | None = None


class DeviceCommandIn(BaseModel):
    type: Literal["volume", "stop", "ping", "amplifier"]
    volume: int | None = Field(default=None, ge=0, le=100, description="Output level, for type 'volume' only.")
    amplifier: Literal["on", "off"] | None = Field(
        default=None,
        description="For type 'amplifier' only: 'off' holds the amplifier off (the cluster plays nothing, "
        "emergencies included) until 'on'.",
    )
    ttl_s: int = Field(default=300, ge=10, le=24 * 3600, description="The agent refuses the command after this.")


class DeviceCommandOut(BaseModel):
    command_id: str
    cluster_id: str
    type: str
    acknowledged: bool = Field(description="Whether the MQTT broker took the command (not yet whether it ran).")


# --------------------------------------------------------------------------------------- accounts and audit


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(default="integration", min_length=1, max_length=200, description="What the token is for.")


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    user_id: RowId | None = Field(default=None, description="Administrators: an account in their scope.")


class TokenOut(BaseModel):
    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    token: str = Field(description="The token itself; shown only now, only its SHA-256 is stored.")


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    scope_unit_id: RowId | None = Field(default=None, description="Default: the administrator's own unit.")
    display_name: str = Field(default="", max_length=200)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    scope_unit_id: int | None
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None


class PrincipalOut(BaseModel):
    username: str
    display_name: str
    role: str
    scope_unit_id: int | None
    via: str
    permissions: list[str]


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    user_id: int | None
    role: str | None
    via: str
    ip: str | None
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any] | None
    unit_id: int | None
