"""Before-images: what each record an import wrote held just before it, so the import can be reverted.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # frozen here: tables.py may change


def upgrade() -> None:
    """Create before_images, keyed by (ticket, key)."""
    op.create_table(
        "before_images",
        sa.Column("ticket", BigId, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("prev_ticket", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("ticket", "key", name="pk_before_images"),
        sa.ForeignKeyConstraint(["ticket"], ["tickets.id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    """Drop before_images (imports done before can no longer be reverted)."""
    op.drop_table("before_images")
