"""Per-tenant submission rate limit: a sliding one-minute window over the tenant's own tickets.

The tickets table already records when each import was accepted, in the one database every API
process shares, so the limit holds across processes and machines with no store of its own: a
submission is refused while the tenant's `limit`-th newest ticket is less than a minute old.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.errors import TooManyRequests
from events import catalog, locks

WINDOW_SECONDS = 60.0


def retry_after(recent: Sequence[datetime], limit: int, now: datetime, window: float = WINDOW_SECONDS) -> int | None:
    """Whole seconds until one more submission fits, or None when it fits now.

    `recent` are the tenant's latest acceptance times, newest first (at least `limit` of them
    if there are that many). 0 or less means unlimited.
    """
    if limit <= 0 or len(recent) < limit:
        return None
    oldest = recent[limit - 1]
    wait = (oldest + timedelta(seconds=window) - now).total_seconds()
    return max(1, math.ceil(wait)) if wait > 0 else None


def check_submission(conn: sa.Connection, tenant_id: int, limit: int, now: datetime) -> None:
    """Raise TooManyRequests (429 + Retry-After) when the tenant has used up its window.

    Call it in the transaction that inserts the ticket: on PostgreSQL a per-tenant advisory lock
    makes concurrent submissions take turns (SQLite's write lock already does), so the count is exact.
    """
    if limit <= 0:
        return
    locks.tenant_submissions(conn, tenant_id)
    recent = catalog.recent_submissions(conn, tenant_id, limit)
    wait = retry_after(recent, limit, now)
    if wait is not None:
        raise TooManyRequests(
            f"too many imports: this tenant may start {limit} per minute; retry in {wait} s", retry_after=wait
        )
