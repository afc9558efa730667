"""Programme items that name an approved bulletin (a recording or a text already approved) instead of a copy.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("programme_item") as batch:
        batch.add_column(sa.Column("names_bulletin", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("programme_item") as batch:
        batch.drop_column("names_bulletin")
