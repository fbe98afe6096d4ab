"""The admin dialect's import batches: created empty, then given one file (their ticket)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from events.tables import batches


def create_batch(
    conn: sa.Connection, batch_id: str, tenant_id: int, type_name: str,
    company: str | None, project: str | None, at: datetime,
) -> None:
    """Record a new, empty batch."""
    conn.execute(
        batches.insert().values(
            id=batch_id, tenant_id=tenant_id, type=type_name, company_id=company,
            company_project_id=project, created_at=at,
        )
    )


def find_batch(conn: sa.Connection, batch_id: str, tenant_id: int) -> sa.Row[tuple[object, ...]] | None:
    """The tenant's batch by id (None: no such batch, or another tenant's)."""
    return conn.execute(
        batches.select().where(batches.c.id == batch_id, batches.c.tenant_id == tenant_id)
    ).first()
