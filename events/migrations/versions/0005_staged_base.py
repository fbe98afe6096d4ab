"""Staged bases: what each key's record held when an atomic import staged it, so finalize can tell
whether another import changed it since.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add staged.base (NULL: no record existed), filled for rows staged before the upgrade.

    Those rows get the record as it is now: an import that was running across the upgrade is
    checked for changes made after it, not for changes it could not have recorded before.
    """
    with op.batch_alter_table("staged") as batch:
        batch.add_column(sa.Column("base", sa.Text(), nullable=True))
    op.execute(
        "UPDATE staged SET base = (SELECT r.data FROM tickets t JOIN records r "
        "ON r.dataset_id = t.dataset_id AND r.key = staged.key WHERE t.id = staged.ticket)"
    )


def downgrade() -> None:
    """Drop staged.base (finalize then merges atomic imports without the check)."""
    with op.batch_alter_table("staged") as batch:
        batch.drop_column("base")
