"""Scheduled airings in the statistics: each item of each slot occurrence, the clusters sent it, its rollup.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("targeted", "delivered", "played", "late", "failed", "missed", "rejected", "stopped")


def upgrade() -> None:
    op.create_table(
        "scheduled_airing",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("slot_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("bulletin_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulletin_id"], ["bulletin.id"], name=op.f("fk_scheduled_airing_bulletin_id_bulletin")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_airing")),
    )
    op.create_index(op.f("ix_scheduled_airing_slot_id"), "scheduled_airing", ["slot_id"], unique=False)
    op.create_index(op.f("ix_scheduled_airing_bulletin_id"), "scheduled_airing", ["bulletin_id"], unique=False)
    op.create_index(op.f("ix_scheduled_airing_start_at"), "scheduled_airing", ["start_at"], unique=False)

    op.create_table(
        "scheduled_airing_target",
        sa.Column("airing_id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["airing_id"], ["scheduled_airing.id"], name=op.f("fk_scheduled_airing_target_airing_id_scheduled_airing")
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"], ["cluster.id"], name=op.f("fk_scheduled_airing_target_cluster_id_cluster")
        ),
        sa.PrimaryKeyConstraint("airing_id", "cluster_id", name=op.f("pk_scheduled_airing_target")),
    )
    op.create_index(
        op.f("ix_scheduled_airing_target_cluster_id"), "scheduled_airing_target", ["cluster_id"], unique=False
    )

    op.create_table(
        "stats_airing_unit",
        sa.Column("airing_id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("played_ms", sa.BigInteger(), nullable=False),
        sa.Column("airtime_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["airing_id"], ["scheduled_airing.id"], name=op.f("fk_stats_airing_unit_airing_id_scheduled_airing")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["admin_unit.id"], name=op.f("fk_stats_airing_unit_unit_id_admin_unit")),
        sa.PrimaryKeyConstraint("airing_id", "unit_id", name=op.f("pk_stats_airing_unit")),
    )
    op.create_index("ix_stats_airing_unit_day_unit_id", "stats_airing_unit", ["day", "unit_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stats_airing_unit_day_unit_id", table_name="stats_airing_unit")
    op.drop_table("stats_airing_unit")
    op.drop_index(op.f("ix_scheduled_airing_target_cluster_id"), table_name="scheduled_airing_target")
    op.drop_table("scheduled_airing_target")
    op.drop_index(op.f("ix_scheduled_airing_start_at"), table_name="scheduled_airing")
    op.drop_index(op.f("ix_scheduled_airing_bulletin_id"), table_name="scheduled_airing")
    op.drop_index(op.f("ix_scheduled_airing_slot_id"), table_name="scheduled_airing")
    op.drop_table("scheduled_airing")
