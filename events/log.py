"""The append-only event log: per-ticket seq numbers, optimistic appends, ordered reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from events.tables import events, tickets
from events.types import (
    TERMINAL_TYPES,
    AnyEvent,
    Event,
    RowFailure,
    chunk_slot,
    decode_event,
    decode_event_counts,
    decode_failures,
    encode_event,
    event_type,
)


class StaleSeq(Exception):
    """Someone appended to the ticket's log first; re-read and decide again."""


class StoredEvent(msgspec.Struct, frozen=True):
    """An event with its place in the log."""

    ticket: int
    seq: int
    event: AnyEvent


def now() -> datetime:
    """The current UTC time, truncated to milliseconds so every rendering of it agrees."""
    t = datetime.now(UTC)
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def append(conn: sa.Connection, ticket: int, expected_seq: int, new: Sequence[Event]) -> int:
    """Append events after `expected_seq`; raise StaleSeq if the log moved on. Returns the last seq."""
    rows = []
    seq = expected_seq
    for ev in new:
        seq += 1
        rows.append(
            {
                "ticket": ticket,
                "seq": seq,
                "type": event_type(ev),
                "chunk": chunk_slot(event_type(ev), getattr(ev, "chunk", None)),
                "at": ev.at,
                "body": encode_event(ev),
            }
        )
    if not rows:
        return expected_seq
    try:
        with conn.begin_nested():
            conn.execute(events.insert(), rows)
    except IntegrityError as exc:
        raise StaleSeq(f"ticket {ticket}: log moved past seq {expected_seq}") from exc
    return seq


# Built once: every status request reads the events after its cached view (building the select
# would cost several times what running it does).
_READ_AFTER = (
    sa.select(events.c.seq, events.c.body)
    .where(events.c.ticket == sa.bindparam("ticket"), events.c.seq > sa.bindparam("after"))
    .order_by(events.c.seq)
)


def read(conn: sa.Connection, ticket: int, after: int = 0, *, failures: bool = True) -> list[StoredEvent]:
    """The ticket's events with seq > after, in order (failures=False: ChunkApplied without its row
    failures, which chunk_failures reads when they are asked for)."""
    result = conn.execute(_READ_AFTER, {"ticket": ticket, "after": after})
    decode = decode_event if failures else decode_event_counts
    return [StoredEvent(ticket, seq, decode(body)) for seq, body in result]


def chunk_failures(conn: sa.Connection, ticket: int, chunk: int) -> tuple[RowFailure, ...]:
    """The row failures of one applied chunk (none if it is not applied)."""
    body = conn.execute(sa.select(events.c.body).where(events.c.ticket == ticket, events.c.chunk == chunk)).scalar()
    return decode_failures(body) if body is not None else ()


def last_seq(conn: sa.Connection, ticket: int) -> int:
    """The ticket's highest seq (0 for an empty log)."""
    value = conn.execute(sa.select(sa.func.max(events.c.seq)).where(events.c.ticket == ticket)).scalar()
    return int(value or 0)


def unfinished_tickets(conn: sa.Connection) -> list[int]:
    """Tickets the log shows unfinished: no terminal event yet, a callback not yet settled, a revert under way."""
    terminal = sa.select(events.c.ticket).where(events.c.type.in_(TERMINAL_TYPES))
    last_settled = (
        sa.select(events.c.ticket, sa.func.max(events.c.seq).label("seq"))
        .where(events.c.type.in_(("webhook_delivered", "webhook_abandoned")))
        .group_by(events.c.ticket)
        .subquery()
    )
    reopened = sa.select(events.c.ticket).where(  # an operator asked for the callback again since
        events.c.ticket == last_settled.c.ticket,
        events.c.type == "webhook_redelivery_requested",
        events.c.seq > last_settled.c.seq,
    )
    settled = sa.select(last_settled.c.ticket).where(~sa.exists(reopened))
    open_ids = conn.execute(sa.select(tickets.c.id).where(tickets.c.id.not_in(terminal))).scalars()
    callbacks = conn.execute(
        sa.select(tickets.c.id).where(
            tickets.c.has_callback.is_(True), tickets.c.id.in_(terminal), tickets.c.id.not_in(settled)
        )
    ).scalars()
    staged = conn.execute(sa.text("SELECT DISTINCT ticket FROM staged")).scalars()
    reverted = sa.select(events.c.ticket).where(events.c.type == "import_reverted")
    reverting = conn.execute(
        sa.select(events.c.ticket).where(events.c.type == "revert_requested", events.c.ticket.not_in(reverted))
    ).scalars()
    return sorted({*open_ids, *callbacks, *staged, *reverting})


def last_activity(conn: sa.Connection, ids: Iterable[int]) -> dict[int, datetime]:
    """When each ticket's log last moved."""
    ids = list(ids)
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(events.c.ticket, sa.func.max(events.c.at))
        .where(events.c.ticket.in_(ids))
        .group_by(events.c.ticket)
    )
    return {ticket: at for ticket, at in rows}


def expired_files(conn: sa.Connection, cutoff: datetime, limit: int = 100) -> list[int]:
    """Tickets that ended before `cutoff` and still have a stored file (no FileRemoved yet)."""
    ended = sa.select(events.c.ticket).where(events.c.type.in_(TERMINAL_TYPES), events.c.at <= cutoff)
    stored = sa.select(events.c.ticket).where(events.c.type == "file_stored")
    removed = sa.select(events.c.ticket).where(events.c.type == "file_removed")
    query = (
        sa.select(tickets.c.id)
        .where(tickets.c.id.in_(ended), tickets.c.id.in_(stored), tickets.c.id.not_in(removed))
        .order_by(tickets.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())
