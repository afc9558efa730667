"""How a text bulletin is read out: its voice and reading speed, kept for edits (console and API).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bulletin") as batch:
        batch.add_column(sa.Column("voice", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("rate_wpm", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulletin") as batch:
        batch.drop_column("rate_wpm")
        batch.drop_column("voice")
