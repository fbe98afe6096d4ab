"""The database schema (SQLAlchemy Core): tenants, credentials, datasets, tickets, the event log,
records, before-images.

Changing anything here is a schema change: add a migration under events/migrations/versions/.
The app's typed catalog rows (events/catalog_models.py) are mapped over these same tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that always reads back as an aware UTC datetime.

    PostgreSQL's timestamptz does; SQLite stores the text and hands back a naive value. One column
    type instead of a "naive -> UTC" patch at every reader. The stored form is unchanged.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to a naive value read back (the service only ever writes UTC)."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # sqlite autoincrement needs INTEGER

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("webhook_secret", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)


def _credential_columns() -> list[sa.Column[object]]:
    """What a credential row holds (fresh Column objects: a Column belongs to one table)."""
    return [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dialect", sa.String(40), nullable=False),
        sa.Column("ident", sa.String(200), nullable=True),  # public half (api user, touchpoint, ...)
        sa.Column("secret_hash", sa.String(128), nullable=False),  # sha256 hex of the secret half
    ]


credentials = sa.Table(
    "credentials",
    metadata,
    *_credential_columns(),
    sa.UniqueConstraint("dialect", "ident", name="uq_credentials_ident"),
    sa.Index("ix_credentials_secret", "dialect", "secret_hash"),
)

# A rotated credential's old secret, still accepted until `expires_at` (the rotation's grace period).
retired_credentials = sa.Table(
    "retired_credentials",
    metadata,
    *_credential_columns(),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_retired_credentials_secret", "dialect", "secret_hash"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "name", name="uq_datasets_name"),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("dataset_id", sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("dialect", sa.String(40), nullable=False),
    sa.Column("dedup_key", sa.String(300), nullable=True),
    sa.Column("has_callback", sa.Boolean, nullable=False, default=False),
    sa.Column("secret_uri", sa.Text, nullable=True),  # source URI with credentials; never in the log
    sa.Column("secret_callback", sa.Text, nullable=True),  # callback URL with credentials; never in the log
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "dedup_key", name="uq_tickets_dedup"),
    sa.Index("ix_tickets_tenant", "tenant_id", "id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # global append order
    sa.Column("ticket", sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("chunk", sa.Integer, nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("ticket", "seq", name="uq_events_seq"),
    sa.UniqueConstraint("ticket", "chunk", name="uq_events_chunk"),  # exactly-once chunk commits
    sa.Index("ix_events_type", "type", "ticket"),
)

# _NO_ROW_KEYS: records, staged and before_images are written a chunk of rows at a time and have no
# foreign keys (migration 0006): PostgreSQL checks one with a query per row, which halved COPY's rate.
# No path deletes a dataset or a ticket, and each row is written with an id read in its transaction;
# code that ever deletes one must delete these rows itself.
records = sa.Table(
    "records",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", BigId, nullable=False),  # no foreign key (0006): see _NO_ROW_KEYS
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("ticket", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("dataset_id", "key", name="uq_records_key"),
)

# Rows of an atomic import wait here until the whole file is known to be within its threshold.
# `base` is the key's record data when the import first staged it (NULL: none existed): finalize
# merges only if every staged key's record still holds its base, i.e. the decisions still hold.
staged = sa.Table(
    "staged",
    metadata,
    sa.Column("ticket", BigId, nullable=False),  # no foreign key (0006): see _NO_ROW_KEYS
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("base", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("ticket", "key", name="pk_staged"),
)

# What each record an import wrote held just before it (data NULL: it did not exist), written in
# the same transaction as the write; a revert puts these back. `prev_ticket` is the record's last
# writer before the import, restored with its values.
before_images = sa.Table(
    "before_images",
    metadata,
    sa.Column("ticket", BigId, nullable=False),  # no foreign key (0006): see _NO_ROW_KEYS
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uuid", sa.String(36), nullable=True),
    sa.Column("data", sa.Text, nullable=True),
    sa.Column("prev_ticket", sa.BigInteger, nullable=True),
    sa.PrimaryKeyConstraint("ticket", "key", name="pk_before_images"),
)

# Admin-batch dialect: a batch exists before its file is uploaded (POST /api/adm/import/batch).
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the batchId GUID
    sa.Column("tenant_id", sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("company_id", sa.String(36), nullable=True),
    sa.Column("company_project_id", sa.String(36), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
