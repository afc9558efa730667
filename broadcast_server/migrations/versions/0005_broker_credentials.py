"""Broker security: clusters' MQTT credentials, one-time enrolment tokens, the server's broker accounts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:12:40.118305
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_server_account",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("broker_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_broker_server_account")),
    )
    op.create_table(
        "cluster_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("broker_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], name=op.f("fk_cluster_credential_cluster_id_cluster")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_credential")),
    )
    with op.batch_alter_table("cluster_credential", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cluster_credential_cluster_id"), ["cluster_id"], unique=False)
        batch_op.create_index(
            "uq_cluster_credential_active",
            ["cluster_id"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )

    op.create_table(
        "enrolment_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], name=op.f("fk_enrolment_token_cluster_id_cluster")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrolment_token_token_hash")),
    )
    with op.batch_alter_table("enrolment_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolment_token_cluster_id"), ["cluster_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrolment_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_token_cluster_id"))
    op.drop_table("enrolment_token")
    with op.batch_alter_table("cluster_credential", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_cluster_credential_active",
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_cluster_credential_cluster_id"))
    op.drop_table("cluster_credential")
    op.drop_table("broker_server_account")
