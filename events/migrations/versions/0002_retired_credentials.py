"""Retired credentials: a rotated credential's old secret, accepted until its grace period ends.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # frozen here: tables.py may change


def upgrade() -> None:
    """Create retired_credentials (the credential's columns plus expires_at) and its look-up index."""
    op.create_table(
        "retired_credentials",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("dialect", sa.String(length=40), nullable=False),
        sa.Column("ident", sa.String(length=200), nullable=True),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_retired_credentials_secret", "retired_credentials", ["dialect", "secret_hash"], unique=False)


def downgrade() -> None:
    """Drop retired_credentials (rotated secrets in their grace period stop working)."""
    op.drop_index("ix_retired_credentials_secret", table_name="retired_credentials")
    op.drop_table("retired_credentials")
