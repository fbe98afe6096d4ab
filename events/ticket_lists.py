"""The operator's listings over tickets: every id in pages, imports newest first, attempted callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from events.tables import datasets, events, tenants, tickets


def ticket_ids(conn: sa.Connection, *, after: int, limit: int) -> list[int]:
    """Ticket ids above `after`, ascending, at most `limit`."""
    query = sa.select(tickets.c.id).where(tickets.c.id > after).order_by(tickets.c.id).limit(limit)
    return list(conn.execute(query).scalars())


def _tickets(tenant: str | None) -> sa.Select[Any]:
    query = (
        sa.select(tickets.c.id, tickets.c.dialect, tenants.c.name, datasets.c.name)
        .join(tenants, tenants.c.id == tickets.c.tenant_id)
        .join(datasets, datasets.c.id == tickets.c.dataset_id)
    )
    return query.where(tenants.c.name == tenant) if tenant else query


def newest_tickets(
    conn: sa.Connection, *, tenant: str | None, since: datetime | None, before: int | None, limit: int
) -> list[tuple[int, str, str, str]]:
    """(id, dialect, tenant, dataset) of tickets newest first, below `before`, created since `since`."""
    query = _tickets(tenant).order_by(tickets.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(tickets.c.created_at >= since)
    if before is not None:
        query = query.where(tickets.c.id < before)
    return [(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(query)]


def tickets_with_callback_attempts(
    conn: sa.Connection, *, tenant: str | None, after: int, limit: int
) -> list[tuple[int, str, str, str]]:
    """(id, dialect, tenant, dataset) of tickets whose callback was attempted at least once, ascending."""
    attempted = sa.select(events.c.ticket).where(events.c.type == "webhook_attempted")
    query = _tickets(tenant).where(tickets.c.id.in_(attempted), tickets.c.id > after).order_by(tickets.c.id).limit(limit)
    return [(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(query)]
