"""Live relay bulletins (tiếp sóng): a stream address and a length on the bulletin; a broadcast without a file,
and a broadcast's start time (set up now, played by the clusters at that time).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_KINDS = "kind IN ('text', 'audio', 'relay')"
_OLD_KINDS = "kind IN ('text', 'audio')"


def upgrade() -> None:
    with op.batch_alter_table("bulletin") as batch:
        batch.add_column(sa.Column("stream_url", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("relay_duration_s", sa.Integer(), nullable=True))
        batch.drop_constraint(op.f("ck_bulletin_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_bulletin_kind"), sa.text(_NEW_KINDS))
    with op.batch_alter_table("broadcast") as batch:
        batch.alter_column("audio_asset_id", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("start_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Relays cannot be expressed before 0012: their broadcasts and bulletins go with the downgrade.
    op.execute("DELETE FROM delivery WHERE broadcast_id IN (SELECT id FROM broadcast WHERE audio_asset_id IS NULL)")
    op.execute("DELETE FROM broadcast WHERE audio_asset_id IS NULL")
    with op.batch_alter_table("broadcast") as batch:
        batch.drop_column("start_at")
        batch.alter_column("audio_asset_id", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("bulletin") as batch:
        batch.drop_constraint(op.f("ck_bulletin_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_bulletin_kind"), sa.text(_OLD_KINDS))
        batch.drop_column("relay_duration_s")
        batch.drop_column("stream_url")
