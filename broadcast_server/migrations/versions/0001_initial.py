"""Initial schema: administrative units, clusters, audio, bulletins, broadcasts and cluster telemetry.

Generated with autogenerate against an empty SQLite database, then tidied by hand. Timestamps are
``sa.DateTime(timezone=True)`` here; the models wrap them in ``UTCDateTime`` (same column type).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "admin_unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        _timestamp("created_at"),
        _timestamp("retired_at", nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["admin_unit.id"], name=op.f("fk_admin_unit_parent_id_admin_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_unit")),
        sa.UniqueConstraint("parent_id", "name", "level", name=op.f("uq_admin_unit_parent_id_name_level")),
    )
    op.create_index(op.f("ix_admin_unit_parent_id"), "admin_unit", ["parent_id"], unique=False)
    # NULLs are distinct in the unique constraint above: roots (provinces) need a partial index.
    op.create_index(
        "uq_admin_unit_root",
        "admin_unit",
        ["name", "level"],
        unique=True,
        sqlite_where=sa.text("parent_id IS NULL"),
        postgresql_where=sa.text("parent_id IS NULL"),
    )

    op.create_table(
        "audio_asset",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("loudness_lufs", sa.Float(), nullable=True),
        sa.Column("true_peak_dbtp", sa.Float(), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_asset")),
    )

    op.create_table(
        "heartbeat",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        _timestamp("sent_at"),
        _timestamp("received_at"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("uptime_s", sa.Float(), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.Column("volume", sa.Integer(), nullable=True),
        sa.Column("amplifier", sa.String(length=16), nullable=True),
        sa.Column("playing", sa.String(length=64), nullable=True),
        sa.Column("cache_free_bytes", sa.BigInteger(), nullable=True),
        sa.Column("link_rssi_dbm", sa.Float(), nullable=True),
        sa.Column("clock_offset_s", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat")),
    )
    op.create_index(op.f("ix_heartbeat_cluster_id"), "heartbeat", ["cluster_id"], unique=False)

    op.create_table(
        "playback_report",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=False),
        sa.Column("broadcast_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _timestamp("reported_at"),
        _timestamp("received_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.Column("played_s", sa.Float(), nullable=True),
        sa.Column("late_s", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playback_report")),
    )
    op.create_index(op.f("ix_playback_report_broadcast_id"), "playback_report", ["broadcast_id"], unique=False)
    op.create_index(op.f("ix_playback_report_cluster_id"), "playback_report", ["cluster_id"], unique=False)
    op.create_index(op.f("ix_playback_report_command_id"), "playback_report", ["command_id"], unique=False)

    op.create_table(
        "bulletin",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("audio_asset_id", sa.String(length=64), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint("kind IN ('text', 'audio')", name=op.f("ck_bulletin_kind")),
        sa.CheckConstraint("priority IN ('normal', 'priority', 'emergency')", name=op.f("ck_bulletin_priority")),
        sa.CheckConstraint("status IN ('draft', 'approved')", name=op.f("ck_bulletin_status")),
        sa.ForeignKeyConstraint(
            ["audio_asset_id"], ["audio_asset.id"], name=op.f("fk_bulletin_audio_asset_id_audio_asset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin")),
    )
    op.create_index(op.f("ix_bulletin_audio_asset_id"), "bulletin", ["audio_asset_id"], unique=False)

    op.create_table(
        "cluster",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(["unit_id"], ["admin_unit.id"], name=op.f("fk_cluster_unit_id_admin_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster")),
    )
    op.create_index(op.f("ix_cluster_unit_id"), "cluster", ["unit_id"], unique=False)

    op.create_table(
        "broadcast",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("bulletin_id", sa.String(length=64), nullable=False),
        sa.Column("audio_asset_id", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint("priority IN ('normal', 'priority', 'emergency')", name=op.f("ck_broadcast_priority")),
        sa.CheckConstraint("status IN ('dispatching', 'dispatched')", name=op.f("ck_broadcast_status")),
        sa.ForeignKeyConstraint(
            ["audio_asset_id"], ["audio_asset.id"], name=op.f("fk_broadcast_audio_asset_id_audio_asset")
        ),
        sa.ForeignKeyConstraint(["bulletin_id"], ["bulletin.id"], name=op.f("fk_broadcast_bulletin_id_bulletin")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    op.create_index(op.f("ix_broadcast_audio_asset_id"), "broadcast", ["audio_asset_id"], unique=False)
    op.create_index(op.f("ix_broadcast_bulletin_id"), "broadcast", ["bulletin_id"], unique=False)

    op.create_table(
        "cluster_state",
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _timestamp("changed_at"),
        _timestamp("last_seen_at"),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], name=op.f("fk_cluster_state_cluster_id_cluster")),
        sa.PrimaryKeyConstraint("cluster_id", name=op.f("pk_cluster_state")),
    )

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _timestamp("sent_at", nullable=True),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "state IN ('queued', 'sent', 'played', 'failed', 'missed', 'rejected', 'stopped')",
            name=op.f("ck_delivery_state"),
        ),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcast.id"], name=op.f("fk_delivery_broadcast_id_broadcast")),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], name=op.f("fk_delivery_cluster_id_cluster")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("broadcast_id", "cluster_id", name=op.f("uq_delivery_broadcast_id_cluster_id")),
        sa.UniqueConstraint("command_id", name=op.f("uq_delivery_command_id")),
    )
    op.create_index(op.f("ix_delivery_broadcast_id"), "delivery", ["broadcast_id"], unique=False)
    op.create_index(op.f("ix_delivery_cluster_id"), "delivery", ["cluster_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents because of the foreign keys.
    for table in (
        "delivery",
        "cluster_state",
        "broadcast",
        "cluster",
        "bulletin",
        "playback_report",
        "heartbeat",
        "audio_asset",
        "admin_unit",
    ):
        op.drop_table(table)
