"""Callback secrets: a callback URL's credentials stay out of the log; the delivery reads them here.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tickets.secret_callback (nullable: tickets without a secret in their callback keep NULL)."""
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("secret_callback", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop tickets.secret_callback (callbacks of unfinished tickets then go to their redacted URL)."""
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("secret_callback")
