"""Broadcasts that repeat (an alert played N times, M minutes apart) and force the output level.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast") as batch:
        batch.add_column(sa.Column("repeat_times", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("repeat_interval_s", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("volume", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcast") as batch:
        batch.drop_column("volume")
        batch.drop_column("repeat_interval_s")
        batch.drop_column("repeat_times")
