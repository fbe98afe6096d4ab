"""Tenants, datasets and tickets: the few mutable-free rows the log refers to, read as typed rows."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import msgspec
import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from events.datasets import DatasetSchema, parse_schema, schema_json
from events.tables import CatalogModel, Dataset, Tenant, Ticket, datasets, tickets

M = TypeVar("M", bound=CatalogModel)

TenantRow = Tenant  # the names the rest of the code reads the typed rows by
TicketRow = Ticket


class DatasetRow(msgspec.Struct, frozen=True):
    """A tenant's dataset with its schema parsed."""

    id: int
    tenant_id: int
    name: str
    schema: DatasetSchema
    created_at: datetime


def _first(conn: sa.Connection, query: SelectOfScalar[M]) -> M | None:
    """The first typed row a query finds, read in the caller's transaction."""
    with Session(conn) as session:
        return session.exec(query).first()


def get_tenant(conn: sa.Connection, tenant_id: int) -> Tenant | None:
    """A tenant by id."""
    return _first(conn, select(Tenant).where(Tenant.id == tenant_id))


def tenant_by_name(conn: sa.Connection, name: str) -> Tenant | None:
    """A tenant by name."""
    return _first(conn, select(Tenant).where(Tenant.name == name))


def _dataset(row: Dataset) -> DatasetRow:
    return DatasetRow(row.id, row.tenant_id, row.name, parse_schema(row.schema_text), row.created_at)


def get_dataset(conn: sa.Connection, tenant_id: int, name: str) -> DatasetRow | None:
    """A tenant's dataset by name (None for another tenant's)."""
    row = _first(conn, select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.name == name))
    return _dataset(row) if row else None


def dataset_by_id(conn: sa.Connection, dataset_id: int) -> DatasetRow | None:
    """A dataset by id."""
    row = _first(conn, select(Dataset).where(Dataset.id == dataset_id))
    return _dataset(row) if row else None


def list_datasets(conn: sa.Connection, tenant_id: int) -> list[DatasetRow]:
    """A tenant's datasets, by name."""
    with Session(conn) as session:
        rows = session.exec(select(Dataset).where(Dataset.tenant_id == tenant_id).order_by(col(Dataset.name)))
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


def get_ticket(conn: sa.Connection, ticket_id: int, tenant_id: int | None = None) -> Ticket | None:
    """A ticket by id; with tenant_id, only if that tenant owns it."""
    if not 0 < ticket_id < 2**63:  # no such id can exist (a URL may carry any integer); the driver would refuse it
        return None
    query = select(Ticket).where(Ticket.id == ticket_id)
    if tenant_id is not None:
        query = query.where(Ticket.tenant_id == tenant_id)
    return _first(conn, query)


def ticket_by_uuid(conn: sa.Connection, uuid: str, tenant_id: int) -> Ticket | None:
    """A tenant's ticket by its uuid."""
    return _first(conn, select(Ticket).where(Ticket.uuid == uuid, Ticket.tenant_id == tenant_id))


def ticket_by_dedup(conn: sa.Connection, tenant_id: int, dedup_key: str) -> Ticket | None:
    """The tenant's ticket created under a deduplication key."""
    return _first(conn, select(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.dedup_key == dedup_key))


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
) -> int:
    """Create a ticket row; returns its id."""
    values = dict(
        uuid=uuid, tenant_id=tenant_id, dataset_id=dataset_id, dialect=dialect, dedup_key=dedup_key,
        has_callback=has_callback, secret_uri=secret_uri, created_at=at,
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
