"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from broadcast_server.models import Priority


class BulletinCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=20_000, description="Vietnamese text, read out by text-to-speech.")
    category: str | None = Field(default=None, max_length=200, examples=["Chuyển đổi số"])
    priority: Priority = Priority.NORMAL
    voice: str = Field(default="vi", pattern=r"^[a-z0-9-]{1,40}$", examples=["vi", "vi-vn-x-central", "vi-vn-x-south"])


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


class TargetIn(BaseModel):
    unit_ids: list[int] = Field(default_factory=list, max_length=10_000)
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
    targeted: int
    states: dict[str, int]


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
