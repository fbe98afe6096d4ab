"""Step `apply_chunk`: validate one parsed chunk, write it and record ChunkApplied in one transaction."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import msgspec

from actors import faults
from actors.checks import check_rows
from actors.chunks import ParsedChunk, chunk_key, decode_chunk
from actors.errors import StepFailed
from events import catalog, locks, records
from events import log as event_log
from events.datasets import KeyReader, RowValidator
from events.db import read_tx, write_tx
from events.decisions import decide_chunk, failure_budget, threshold_label
from events.flow import due_chunks, new_steps, plan
from events.log import now
from events.projections import fold
from events.types import AnyEvent, ChunkApplied, ThresholdExceeded

if TYPE_CHECKING:
    from actors.runtime import Runtime


def run(rt: Runtime, ticket: int, chunk: int | None = None) -> None:
    """Apply chunk `chunk` exactly once: the (ticket, chunk) key makes a second delivery a no-op."""
    view = rt.view(ticket)
    if view is None or chunk is None or chunk not in due_chunks(view):
        return
    chunks = plan(view)
    assert view.spec is not None and chunks is not None
    spec = view.spec
    row = rt.ticket(ticket)
    with read_tx(rt.engine) as conn:
        dataset = catalog.dataset_by_id(conn, row.dataset_id)
    if dataset is None:
        raise StepFailed(f"dataset {spec.dataset!r} no longer exists")
    columns = chunks.columns
    schema_json = msgspec.json.encode(dataset.schema)
    checked = rt.check_ahead.take((view.uuid, chunk, schema_json, columns))
    if chunk + 1 < chunks.chunks and not chunks.after:
        # one after another: the next chunk's rows are checked in a child while this one is written
        # (side by side, the next chunks are being checked by the other workers already)
        rt.check_ahead.start((view.uuid, chunk + 1, schema_json, columns), partial(_parsed_bytes, rt, view.uuid, chunk + 1))
    else:
        rt.check_ahead.rest()
    if checked is None:
        checked = check_rows(
            _staged(rt, view.uuid, chunk), RowValidator(dataset.schema, columns), KeyReader(dataset.schema, columns)
        )
    rows, failed_keys = checked.rows, checked.failed_keys
    keys = {r.key for _, _, r in rows if not isinstance(r, str)} | set(failed_keys.values())
    # Atomic imports and dry runs write to the ticket's staging: later chunks see what earlier ones
    # (would have) written, and finalize merges it (atomic) or discards it (dry run).
    to_staging = spec.policy == "atomic" or spec.dry_run
    budget = failure_budget(spec, view.total_rows or 0)  # a percentage: never while the file is read (overlaps_parse)
    with write_tx(rt.engine) as conn:
        locks.dataset_writes(conn, dataset.id)  # decide from what is there, not what another writer overtakes
        # The log as it is now that no other chunk of the dataset is being written: a chunk applied
        # side by side since the first look is in it, and this chunk may have been applied by a
        # second delivery of its message meanwhile.
        view = rt.views.load(conn, ticket)
        if view is None or chunk not in due_chunks(view):
            return
        existing = records.fetch_existing(conn, dataset.id, keys, staged_ticket=ticket if to_staging else None)
        earlier: dict[str, int] = {}
        if spec.mode == "insert" and chunk:
            clashing = [r.key for _, _, r in rows if not isinstance(r, str) and r.key in existing]
            if clashing:
                created = records.created_rows(
                    conn, dataset.id, view.uuid, clashing, staged_ticket=ticket if to_staging else None
                )
                earlier = _creating_lines(rt, view.uuid, chunk, checked.first, created)
        decision = decide_chunk(
            rows, existing, spec.mode, view.failed, budget, view.threshold_exceeded, failed_keys, earlier
        )
        records.write(conn, dataset.id, ticket, view.uuid, decision.writes, staged=to_staging)
        at = now()
        new: list[AnyEvent] = [
            ChunkApplied(
                at=at, chunk=chunk, first=checked.first, runs=tuple(decision.runs), failures=tuple(decision.failures),
                failed_existing=tuple(decision.failed_existing),
            )
        ]
        if decision.exceeded and not view.threshold_exceeded:
            new.append(ThresholdExceeded(at=at, failed=decision.failed, threshold=threshold_label(spec)))
        event_log.append(conn, ticket, view.seq, new)
        faults.hit("apply_chunk", "before_commit", chunk, conn)
    faults.hit("apply_chunk", "after_commit", chunk)
    for step in new_steps(view, fold(new, view)):  # what this chunk made due: the next chunks, or finalize
        rt.send(ticket, step)
    faults.hit("apply_chunk", "after_drive", chunk)


def _staged(rt: Runtime, ticket_uuid: str, chunk: int) -> ParsedChunk:
    """A parsed chunk, or StepFailed when it is gone."""
    return decode_chunk(_parsed_bytes(rt, ticket_uuid, chunk))


def _parsed_bytes(rt: Runtime, ticket_uuid: str, chunk: int) -> bytes:
    """A parsed chunk as stored, or StepFailed when it is gone."""
    try:
        return rt.blobs.read_bytes(chunk_key(ticket_uuid, chunk))
    except FileNotFoundError:
        raise StepFailed(f"parsed chunk {chunk} is missing; the file must be parsed again") from None


def _creating_lines(rt: Runtime, ticket_uuid: str, chunk: int, first: int, created: dict[str, int]) -> dict[str, int]:
    """The line of each row (by index) that created a key in an earlier chunk, read off its parsed chunk.

    Every chunk but the last holds the same number of rows, so a row's chunk follows from its index.
    """
    size = first // chunk
    lines: dict[str, int] = {}
    by_chunk: dict[int, list[tuple[str, int]]] = {}
    for key, index in created.items():
        if index < first:  # always: only earlier chunks have written
            by_chunk.setdefault(index // size, []).append((key, index))
    for number, wanted in by_chunk.items():
        rows = _staged(rt, ticket_uuid, number)
        for key, index in wanted:
            lines[key] = rows.rows[index - rows.first][0]
    return lines
