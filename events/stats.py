"""Counts over the event log for the metrics endpoint: imports by state and dialect, webhook events."""

from __future__ import annotations

import sqlalchemy as sa

from events.tables import events, tickets
from events.types import TERMINAL_TYPES

STATE_OF = {"import_completed": "completed", "import_failed": "failed", "import_canceled": "canceled"}


def import_counts(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """Tickets by (state, dialect): terminal ones by their terminal event, the rest as "running"."""
    # Appends are optimistic (expected seq), so a ticket's log holds at most one terminal event.
    ended = conn.execute(
        sa.select(tickets.c.dialect, events.c.type, sa.func.count())
        .select_from(events.join(tickets, tickets.c.id == events.c.ticket))
        .where(events.c.type.in_(sorted(TERMINAL_TYPES)))
        .group_by(tickets.c.dialect, events.c.type)
    )
    counts: dict[tuple[str, str], int] = {}
    for dialect, kind, n in ended:
        counts[(STATE_OF[kind], dialect)] = int(n)
    for dialect, total in conn.execute(sa.select(tickets.c.dialect, sa.func.count()).group_by(tickets.c.dialect)):
        finished = sum(counts.get((state, dialect), 0) for state in STATE_OF.values())
        counts[("running", dialect)] = max(0, int(total) - finished)
        for state in STATE_OF.values():
            counts.setdefault((state, dialect), 0)
    return counts


def webhook_counts(conn: sa.Connection) -> dict[str, int]:
    """How many webhook events of each type the log holds."""
    kinds = ("webhook_attempted", "webhook_delivered", "webhook_abandoned", "webhook_redelivery_requested")
    rows = conn.execute(
        sa.select(events.c.type, sa.func.count()).where(events.c.type.in_(kinds)).group_by(events.c.type)
    )
    found = {kind: int(n) for kind, n in rows}
    return {kind: found.get(kind, 0) for kind in kinds}
