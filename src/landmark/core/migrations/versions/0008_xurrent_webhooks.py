"""Xurrent webhooks: policies (the key pairs that sign deliveries) and pending verifications

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import landmark.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("jwt_alg", sa.String(length=8), nullable=False),
        sa.Column("jwt_audience", sa.String(length=255), nullable=True),
        sa.Column("jwt_claim_expires_in", sa.Integer(), nullable=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", landmark.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", landmark.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webhook_policies_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_policies")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("webhook_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_policies_account_id_name"), ["account_id", "name"], unique=False
        )
    op.create_table(
        "webhook_verifications",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", landmark.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", landmark.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webhook_verifications_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_verifications_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "subscription_id", name=op.f("pk_webhook_verifications")
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_verifications")
    with op.batch_alter_table("webhook_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_policies_account_id_name"))
    op.drop_table("webhook_policies")
