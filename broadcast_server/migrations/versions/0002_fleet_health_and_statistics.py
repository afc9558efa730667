"""Fleet health and statistics: presence history, health fields of cluster_state, rollup tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CAUSES = "cause IN ('status', 'heartbeat', 'will', 'clean', 'heartbeat_timeout', 'reconnect')"


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def _ms(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("cluster_state") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=24), nullable=True))
        batch.add_column(_timestamp("last_heartbeat_at", nullable=True))
        batch.add_column(_timestamp("last_error_at", nullable=True))
        batch.add_column(sa.Column("amplifier", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("clock_offset_s", sa.Float(), nullable=True))

    op.create_index("ix_broadcast_created_at", "broadcast", ["created_at"], unique=False)

    op.create_table(
        "presence_event",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        _timestamp("at"),
        sa.Column("cause", sa.String(length=24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(_CAUSES, name=op.f("ck_presence_event_cause")),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], name=op.f("fk_presence_event_cluster_id_cluster")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_event")),
    )
    op.create_index(op.f("ix_presence_event_at"), "presence_event", ["at"], unique=False)
    op.create_index("ix_presence_event_cluster_id_at", "presence_event", ["cluster_id", "at"], unique=False)

    op.create_table(
        "stats_broadcast_unit",
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        *(_count(n) for n in ("targeted", "delivered", "played", "late", "failed", "missed", "rejected", "stopped")),
        _ms("played_ms"),
        _ms("airtime_ms"),
        sa.ForeignKeyConstraint(
            ["broadcast_id"], ["broadcast.id"], name=op.f("fk_stats_broadcast_unit_broadcast_id_broadcast")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["admin_unit.id"], name=op.f("fk_stats_broadcast_unit_unit_id_admin_unit")
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "unit_id", name=op.f("pk_stats_broadcast_unit")),
    )
    op.create_index("ix_stats_broadcast_unit_day_unit_id", "stats_broadcast_unit", ["day", "unit_id"], unique=False)

    op.create_table(
        "stats_unit_day",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(
            _count(n)
            for n in (
                "broadcasts",
                "bulletins_played",
                "emergency_played",
                "targeted",
                "delivered",
                "played",
                "late",
                "failed",
                "missed",
                "rejected",
                "stopped",
            )
        ),
        _ms("played_ms"),
        _ms("airtime_ms"),
        sa.ForeignKeyConstraint(["unit_id"], ["admin_unit.id"], name=op.f("fk_stats_unit_day_unit_id_admin_unit")),
        sa.PrimaryKeyConstraint("unit_id", "day", name=op.f("pk_stats_unit_day")),
    )
    op.create_index("ix_stats_unit_day_day", "stats_unit_day", ["day"], unique=False)

    op.create_table(
        "stats_unit_day_category",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        _count("bulletins_played"),
        _ms("airtime_ms"),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["admin_unit.id"], name=op.f("fk_stats_unit_day_category_unit_id_admin_unit")
        ),
        sa.PrimaryKeyConstraint("unit_id", "day", "category", name=op.f("pk_stats_unit_day_category")),
    )

    op.create_table(
        "stats_dirty_broadcast",
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        _timestamp("marked_at"),
        sa.PrimaryKeyConstraint("broadcast_id", name=op.f("pk_stats_dirty_broadcast")),
    )

    op.create_table(
        "presence_cluster_day",
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _ms("online_ms"),
        _count("drops"),
        sa.Column("online_at_end", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"], ["cluster.id"], name=op.f("fk_presence_cluster_day_cluster_id_cluster")
        ),
        sa.PrimaryKeyConstraint("cluster_id", "day", name=op.f("pk_presence_cluster_day")),
    )
    op.create_index("ix_presence_cluster_day_day", "presence_cluster_day", ["day"], unique=False)

    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        _timestamp("broadcasts_until", nullable=True),
        sa.Column("presence_until", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_rollup_state")),
    )


def downgrade() -> None:
    for table in (
        "stats_rollup_state",
        "presence_cluster_day",
        "stats_dirty_broadcast",
        "stats_unit_day_category",
        "stats_unit_day",
        "stats_broadcast_unit",
        "presence_event",
    ):
        op.drop_table(table)
    op.drop_index("ix_broadcast_created_at", table_name="broadcast")
    with op.batch_alter_table("cluster_state") as batch:
        for column in ("clock_offset_s", "amplifier", "last_error_at", "last_heartbeat_at", "cause"):
            batch.drop_column(column)
