"""The baseline: the schema as metadata.create_all made it before migrations.

A database from before migrations (tables, no alembic_version) is stamped with this revision
instead of running it (see events.migrations).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # frozen here: tables.py may change


def upgrade() -> None:
    """Create tenants, credentials, datasets, tickets, events, records, staged and batches."""
    op.create_table(
        "tenants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("webhook_secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "credentials",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("dialect", sa.String(length=40), nullable=False),
        sa.Column("ident", sa.String(length=200), nullable=True),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dialect", "ident", name="uq_credentials_ident"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_credentials_secret", "credentials", ["dialect", "secret_hash"], unique=False)
    op.create_table(
        "datasets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_datasets_name"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_table(
        "tickets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("dataset_id", BigId, nullable=False),
        sa.Column("dialect", sa.String(length=40), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=True),
        sa.Column("has_callback", sa.Boolean(), nullable=False),
        sa.Column("secret_uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "dedup_key", name="uq_tickets_dedup"),
        sa.UniqueConstraint("uuid"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
    )
    op.create_index("ix_tickets_tenant", "tickets", ["tenant_id", "id"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ticket", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket", "seq", name="uq_events_seq"),
        sa.UniqueConstraint("ticket", "chunk", name="uq_events_chunk"),
        sa.ForeignKeyConstraint(["ticket"], ["tickets.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_events_type", "events", ["type", "ticket"], unique=False)
    op.create_table(
        "records",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("dataset_id", BigId, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "key", name="uq_records_key"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
    )
    op.create_table(
        "staged",
        sa.Column("ticket", BigId, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("ticket", "key", name="pk_staged"),
        sa.ForeignKeyConstraint(["ticket"], ["tickets.id"], ondelete="CASCADE"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("company_id", sa.String(length=36), nullable=True),
        sa.Column("company_project_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    """Drop every table (and with them every tenant, import and record)."""
    for table in ("batches", "staged", "records", "events", "tickets", "datasets", "credentials", "tenants"):
        op.drop_table(table)
