"""Tenants, datasets and tickets: the few mutable-free rows the log refers to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from events.datasets import DatasetSchema, parse_schema, schema_json
from events.tables import datasets, tenants, tickets


class TenantRow(msgspec.Struct, frozen=True):
    """A tenant as the rest of the code sees it."""

    id: int
    name: str
    webhook_secret: str


class DatasetRow(msgspec.Struct, frozen=True):
    """A tenant's dataset and its schema."""

    id: int
    tenant_id: int
    name: str
    schema: DatasetSchema
    created_at: datetime


class TicketRow(msgspec.Struct, frozen=True):
    """A ticket's immutable facts (its status lives in the log)."""

    id: int
    uuid: str
    tenant_id: int
    dataset_id: int
    dialect: str
    dedup_key: str | None
    has_callback: bool
    secret_uri: str | None
    created_at: datetime
    secret_callback: str | None = None  # the callback URL with its credentials (the log has it redacted)


def get_tenant(conn: sa.Connection, tenant_id: int) -> TenantRow | None:
    """A tenant by id."""
    row = conn.execute(sa.select(tenants.c.id, tenants.c.name, tenants.c.webhook_secret).where(tenants.c.id == tenant_id)).first()
    return TenantRow(*row) if row else None


def tenant_by_name(conn: sa.Connection, name: str) -> TenantRow | None:
    """A tenant by name."""
    row = conn.execute(sa.select(tenants.c.id, tenants.c.name, tenants.c.webhook_secret).where(tenants.c.name == name)).first()
    return TenantRow(*row) if row else None


def _dataset(row: Any) -> DatasetRow:
    return DatasetRow(row[0], row[1], row[2], parse_schema(row[3]), row[4])


_DATASET_COLS = (datasets.c.id, datasets.c.tenant_id, datasets.c.name, datasets.c.schema, datasets.c.created_at)


def get_dataset(conn: sa.Connection, tenant_id: int, name: str) -> DatasetRow | None:
    """A tenant's dataset by name (None for another tenant's)."""
    row = conn.execute(
        sa.select(*_DATASET_COLS).where(datasets.c.tenant_id == tenant_id, datasets.c.name == name)
    ).first()
    return _dataset(row) if row else None


def dataset_by_id(conn: sa.Connection, dataset_id: int) -> DatasetRow | None:
    """A dataset by id."""
    row = conn.execute(sa.select(*_DATASET_COLS).where(datasets.c.id == dataset_id)).first()
    return _dataset(row) if row else None


def list_datasets(conn: sa.Connection, tenant_id: int) -> list[DatasetRow]:
    """A tenant's datasets, by name."""
    rows = conn.execute(sa.select(*_DATASET_COLS).where(datasets.c.tenant_id == tenant_id).order_by(datasets.c.name))
    return [_dataset(r) for r in rows]


def put_dataset(conn: sa.Connection, tenant_id: int, name: str, schema: DatasetSchema, at: datetime) -> tuple[DatasetRow, bool]:
    """Create or redefine a dataset; returns it and whether it was created."""
    existing = get_dataset(conn, tenant_id, name)
    text = schema_json(schema).decode()
    if existing is None:
        conn.execute(datasets.insert().values(tenant_id=tenant_id, name=name, schema=text, created_at=at))
        created = get_dataset(conn, tenant_id, name)
        assert created is not None
        return created, True
    conn.execute(datasets.update().where(datasets.c.id == existing.id).values(schema=text))
    return msgspec.structs.replace(existing, schema=schema), False


_TICKET_COLS = (
    tickets.c.id, tickets.c.uuid, tickets.c.tenant_id, tickets.c.dataset_id, tickets.c.dialect,
    tickets.c.dedup_key, tickets.c.has_callback, tickets.c.secret_uri, tickets.c.created_at,
    tickets.c.secret_callback,
)


def get_ticket(conn: sa.Connection, ticket_id: int, tenant_id: int | None = None) -> TicketRow | None:
    """A ticket by id; with tenant_id, only if that tenant owns it."""
    if not 0 < ticket_id < 2**63:  # no such id can exist (a URL may carry any integer); the driver would refuse it
        return None
    query = sa.select(*_TICKET_COLS).where(tickets.c.id == ticket_id)
    if tenant_id is not None:
        query = query.where(tickets.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    return TicketRow(**row._mapping) if row else None


def ticket_by_uuid(conn: sa.Connection, uuid: str, tenant_id: int) -> TicketRow | None:
    """A tenant's ticket by its uuid."""
    row = conn.execute(sa.select(*_TICKET_COLS).where(tickets.c.uuid == uuid, tickets.c.tenant_id == tenant_id)).first()
    return TicketRow(**row._mapping) if row else None


def ticket_by_dedup(conn: sa.Connection, tenant_id: int, dedup_key: str) -> TicketRow | None:
    """The tenant's ticket created under a deduplication key."""
    row = conn.execute(
        sa.select(*_TICKET_COLS).where(tickets.c.tenant_id == tenant_id, tickets.c.dedup_key == dedup_key)
    ).first()
    return TicketRow(**row._mapping) if row else None


def insert_ticket(
    conn: sa.Connection,
    *,
    uuid: str,
    tenant_id: int,
    dataset_id: int,
    dialect: str,
    dedup_key: str | None,
    has_callback: bool,
    secret_uri: str | None,
    at: datetime,
    ticket_id: int | None = None,
    secret_callback: str | None = None,
) -> int:
    """Create a ticket row; returns its id."""
    values = dict(
        uuid=uuid, tenant_id=tenant_id, dataset_id=dataset_id, dialect=dialect, dedup_key=dedup_key,
        has_callback=has_callback, secret_uri=secret_uri, created_at=at, secret_callback=secret_callback,
    )
    if ticket_id is not None:
        values["id"] = ticket_id
    result = conn.execute(tickets.insert().values(**values))
    if ticket_id is not None:
        return ticket_id
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def list_ticket_ids(conn: sa.Connection, tenant_id: int | None = None, after: int = 0, limit: int = 100) -> list[int]:
    """Ticket ids in creation order, optionally for one tenant."""
    query = sa.select(tickets.c.id).where(tickets.c.id > after).order_by(tickets.c.id).limit(limit)
    if tenant_id is not None:
        query = query.where(tickets.c.tenant_id == tenant_id)
    return list(conn.execute(query).scalars())
