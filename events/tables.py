"""The database schema: the catalog (tenants, credentials, datasets, tickets) as SQLModel classes,
the event log, records and staging as SQLAlchemy Core tables, all on one MetaData.

Changing anything here is a schema change: add a migration under events/migrations/versions/.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # sqlite autoincrement needs INTEGER


class CatalogModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the catalog's typed rows: their tables live on `metadata` beside the Core tables."""

    __table__: ClassVar[sa.Table]


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def _owner(table: str, *, cascade: bool = True) -> sa.Column[int]:
    return sa.Column(sa.ForeignKey(f"{table}.id", ondelete="CASCADE" if cascade else None), nullable=False)


class Tenant(CatalogModel, table=True):
    """A tenant: the owner of credentials, datasets and tickets."""

    __tablename__ = "tenants"
    id: int = Field(sa_column=_id())
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    webhook_secret: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class Credential(CatalogModel, table=True):
    """One dialect's credential of a tenant; only a hash of its secret half is kept."""

    __tablename__ = "credentials"
    __table_args__ = (
        sa.UniqueConstraint("dialect", "ident", name="uq_credentials_ident"),
        sa.Index("ix_credentials_secret", "dialect", "secret_hash"),
    )
    id: int = Field(sa_column=_id())
    tenant_id: int = Field(sa_column=_owner("tenants"))
    dialect: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    ident: str | None = Field(sa_column=sa.Column(sa.String(200), nullable=True))  # public half (api user, touchpoint, ...)
    secret_hash: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))  # sha256 hex of the secret half


class Dataset(CatalogModel, table=True):
    """A tenant's dataset; `schema_text` is its schema as JSON (column `schema`)."""

    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name", name="uq_datasets_name"),)
    id: int = Field(sa_column=_id())
    tenant_id: int = Field(sa_column=_owner("tenants"))
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    schema_text: str = Field(sa_column=sa.Column("schema", sa.Text, nullable=False))  # `schema` is a pydantic name
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class Ticket(CatalogModel, table=True):
    """A ticket's immutable facts (its status lives in the log)."""

    __tablename__ = "tickets"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "dedup_key", name="uq_tickets_dedup"),
        sa.Index("ix_tickets_tenant", "tenant_id", "id"),
    )
    id: int = Field(sa_column=_id())
    uuid: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    tenant_id: int = Field(sa_column=_owner("tenants"))
    dataset_id: int = Field(sa_column=_owner("datasets", cascade=False))
    dialect: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    dedup_key: str | None = Field(sa_column=sa.Column(sa.String(300), nullable=True))
    has_callback: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False, default=False))
    secret_uri: str | None = Field(sa_column=sa.Column(sa.Text, nullable=True))  # source URI with credentials; never in the log
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


# The catalog's Core tables, for inserts, joins and the export.
tenants = Tenant.__table__
credentials = Credential.__table__
datasets = Dataset.__table__
tickets = Ticket.__table__

# A rotated credential's old secret, still accepted until `expires_at` (the rotation's grace period).
retired_credentials = sa.Table(
    "retired_credentials",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("dialect", sa.String(40), nullable=False),
    sa.Column("ident", sa.String(200), nullable=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_retired_credentials_secret", "dialect", "secret_hash"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # global append order
    sa.Column("ticket", sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("chunk", sa.Integer, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("ticket", "seq", name="uq_events_seq"),
    sa.UniqueConstraint("ticket", "chunk", name="uq_events_chunk"),  # exactly-once chunk commits
    sa.Index("ix_events_type", "type", "ticket"),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("ticket", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("dataset_id", "key", name="uq_records_key"),
)

# Rows of an atomic import wait here until the whole file is known to be within its threshold.
staged = sa.Table(
    "staged",
    metadata,
    sa.Column("ticket", sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("ticket", "key", name="pk_staged"),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
