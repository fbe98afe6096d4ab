"""Typed catalog rows for the app's displays (the CLI's listings, the operator routes): SQLModel
classes mapped over the Core tables of events/tables.py, and the reads that return them.

The classes add no table: each one's `__table__` is the Core table and each field names its
column, so the schema (and alembic's metadata) stays the one in events/tables.py. Only app-side
code imports this module: SQLModel brings pydantic and the ORM (~10 MB resident), which the
worker's path (events.catalog: Core reads into msgspec rows) never loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from events.tables import datasets, events, metadata, tenants, tickets


class CatalogModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the typed rows: mapped on the schema's one MetaData (they declare no table of their own)."""


class Tenant(CatalogModel, table=True):
    """A tenant: the owner of credentials, datasets and tickets."""

    __table__ = tenants
    id: int = Field(sa_column=tenants.c.id)
    name: str = Field(sa_column=tenants.c.name)
    webhook_secret: str = Field(sa_column=tenants.c.webhook_secret)
    created_at: datetime = Field(sa_column=tenants.c.created_at)


class Dataset(CatalogModel, table=True):
    """A tenant's dataset; `schema_text` is its schema as JSON (column `schema`, a pydantic name)."""

    __table__ = datasets
    id: int = Field(sa_column=datasets.c.id)
    tenant_id: int = Field(sa_column=datasets.c.tenant_id)
    name: str = Field(sa_column=datasets.c.name)
    schema_text: str = Field(sa_column=datasets.c.schema)
    created_at: datetime = Field(sa_column=datasets.c.created_at)


class Ticket(CatalogModel, table=True):
    """A ticket's immutable facts (its status lives in the log)."""

    __table__ = tickets
    id: int = Field(sa_column=tickets.c.id)
    uuid: str = Field(sa_column=tickets.c.uuid)
    tenant_id: int = Field(sa_column=tickets.c.tenant_id)
    dataset_id: int = Field(sa_column=tickets.c.dataset_id)
    dialect: str = Field(sa_column=tickets.c.dialect)
    dedup_key: str | None = Field(sa_column=tickets.c.dedup_key)
    has_callback: bool = Field(sa_column=tickets.c.has_callback)
    secret_uri: str | None = Field(sa_column=tickets.c.secret_uri)  # source URI with credentials; never shown
    created_at: datetime = Field(sa_column=tickets.c.created_at)


class ListedTicket(NamedTuple):
    """A ticket as the listings show it: the row with its tenant's and dataset's names."""

    ticket: Ticket
    tenant: str
    dataset: str


M = TypeVar("M", bound=CatalogModel)


def _first(conn: sa.Connection, query: SelectOfScalar[M]) -> M | None:
    """The first typed row a query finds, read in the caller's transaction."""
    with Session(conn) as session:
        return session.exec(query).first()


def tenant(conn: sa.Connection, tenant_id: int) -> Tenant | None:
    """A tenant by id."""
    return _first(conn, select(Tenant).where(Tenant.id == tenant_id))


def ticket(conn: sa.Connection, ticket_id: int) -> Ticket | None:
    """A ticket by id, whichever tenant owns it (None for an id that cannot exist)."""
    if not 0 < ticket_id < 2**63:  # a URL may carry any integer; the driver would refuse it
        return None
    return _first(conn, select(Ticket).where(Ticket.id == ticket_id))


def _listed(conn: sa.Connection, tenant_name: str | None, where: Sequence[Any], newest_first: bool, limit: int) -> list[ListedTicket]:
    query = (
        select(Ticket, Tenant.name, Dataset.name)
        .join(Tenant, col(Tenant.id) == col(Ticket.tenant_id))
        .join(Dataset, col(Dataset.id) == col(Ticket.dataset_id))
        .where(*where)
        .order_by(col(Ticket.id).desc() if newest_first else col(Ticket.id))
        .limit(limit)
    )
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    with Session(conn) as session:
        return [ListedTicket(row, tenant_of, dataset_of) for row, tenant_of, dataset_of in session.exec(query)]


def tickets_newest_first(
    conn: sa.Connection, *, tenant_name: str | None, since: datetime | None, before: int | None, limit: int
) -> list[ListedTicket]:
    """One page of tickets, newest first: created since `since`, with ids below `before`."""
    where = [col(Ticket.created_at) >= since] if since is not None else []
    if before is not None:
        where.append(col(Ticket.id) < before)
    return _listed(conn, tenant_name, where, True, limit)


def tickets_with_callback_attempts(conn: sa.Connection, *, tenant_name: str | None, after: int, limit: int) -> list[ListedTicket]:
    """One page of tickets whose callback was attempted at least once, by id from `after` on."""
    attempted = sa.select(events.c.ticket).where(events.c.type == "webhook_attempted")
    return _listed(conn, tenant_name, [col(Ticket.id) > after, col(Ticket.id).in_(attempted)], False, limit)
