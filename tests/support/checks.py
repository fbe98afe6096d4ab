"""What every ticket's log must satisfy, and the records an import of contacts() rows must leave."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import sqlalchemy as sa

from actors.runtime import Runtime
from events import log as event_log
from events.db import read_tx
from events.flow import due_chunks
from events.projections import ImportView, apply
from events.types import TERMINAL_TYPES, ChunkApplied, event_type

RANK = {"accepted": 0, "processing": 1, "completed": 2, "failed": 2, "canceled": 2}


def events_of(rt: Runtime, ticket: int) -> list[Any]:
    """The ticket's events, in order."""
    with read_tx(rt.engine) as conn:
        return [s.event for s in event_log.read(conn, ticket)]


def types_of(rt: Runtime, ticket: int) -> list[str]:
    """The ticket's event tags, in order."""
    return [event_type(e) for e in events_of(rt, ticket)]


def check_log(rt: Runtime, ticket: int) -> ImportView:
    """What every log must satisfy at any moment; returns its view.

    seqs run 1..n; the state only moves forward; at most one terminal event; each chunk is
    applied once, in its turn (in order, or side by side as FileParsed.after allows), and the
    chunks' rows follow each other with no gap or overlap.
    """
    with read_tx(rt.engine) as conn:
        stored = event_log.read(conn, ticket)
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1)), "seqs have gaps"
    view = ImportView(ticket=ticket)
    rank = 0
    terminal = 0
    chunks: list[tuple[int, int, int]] = []  # (chunk, first row, rows)
    for item in stored:
        before = view.state
        if isinstance(item.event, ChunkApplied):
            assert item.event.chunk in due_chunks(view), f"chunk {item.event.chunk} applied out of its turn or twice"
            chunks.append((item.event.chunk, item.event.first, sum(n for _, n in item.event.runs)))
        view = apply(view, item.event)
        assert RANK[view.state] >= rank, f"state moved back from {before} to {view.state}"
        assert not (RANK[before] == 2 and view.state != before), f"terminal state {before} changed"
        rank = RANK[view.state]
        if event_type(item.event) in TERMINAL_TYPES:
            terminal += 1
    assert terminal <= 1, f"{terminal} terminal events"
    next_row = 0
    for number, (chunk, first, rows) in enumerate(sorted(chunks)):
        if chunk != number:  # a chunk ahead of one still to be applied: its rows are not counted yet
            break
        assert first == next_row, f"chunk {chunk} starts at {first}"
        next_row += rows
    return msgspec.structs.replace(view, seq=len(stored))


def ticket_records(rt: Runtime, ticket: int) -> dict[str, dict[str, Any]]:
    """Records last written by this ticket, by key."""
    with read_tx(rt.engine) as conn:
        rows = conn.execute(sa.text("SELECT key, data FROM records WHERE ticket = :t"), {"t": ticket})
        return {key: json.loads(data) for key, data in rows}


def staged_count(rt: Runtime, ticket: int) -> int:
    """Rows an atomic import holds in staging."""
    with read_tx(rt.engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM staged WHERE ticket = :t"), {"t": ticket}).scalar() or 0)


def expected_record(row: list[Any]) -> dict[str, Any]:
    """The record a `contacts()` row becomes."""
    email, name, age, balance, active, joined = row
    return {"email": email, "name": name, "age": int(age), "balance": balance, "active": active == "true", "joined": joined}


def check_exactly_once(rt: Runtime, ticket: int, rows: list[list[Any]]) -> ImportView:
    """The import completed and every data row (rows[1:]) landed once, with its values."""
    view = check_log(rt, ticket)
    data = rows[1:]
    assert view.state == "completed", (view.state, view.reason)
    assert (view.total_rows, view.created, view.processed, view.failed) == (len(data), len(data), len(data), 0)
    assert view.parsed is not None and view.chunks_applied == view.parsed.chunks
    got = ticket_records(rt, ticket)
    assert len(got) == len(data)
    for row in data:
        assert got[json.dumps([row[0]], separators=(",", ":"))] == expected_record(row)
    assert staged_count(rt, ticket) == 0
    return view
