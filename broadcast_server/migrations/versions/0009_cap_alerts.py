"""CAP alerts received from warning agencies (broadcast_server/cap/).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cap_alert",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("bulletin_id", sa.String(length=64), sa.ForeignKey("bulletin.id"), nullable=True),
        sa.Column("broadcast_id", sa.String(length=64), sa.ForeignKey("broadcast.id"), nullable=True),
        sa.Column("clusters", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.UniqueConstraint("sender", "identifier"),
    )
    op.create_index("ix_cap_alert_received_at", "cap_alert", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_cap_alert_received_at", table_name="cap_alert")
    op.drop_table("cap_alert")
