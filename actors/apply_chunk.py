"""Step `apply_chunk`: validate one staged chunk, write it and record ChunkApplied in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import faults
from actors.errors import StepFailed
from actors.staging import chunk_key, decode_chunk
from events import catalog, locks, records
from events import log as event_log
from events.datasets import KeyReader, RowValidator, ValidRow
from events.db import read_tx, write_tx
from events.decisions import decide_chunk, failure_budget, threshold_label
from events.flow import APPLY, Step, next_step
from events.log import now
from events.types import ChunkApplied, Event, ThresholdExceeded

if TYPE_CHECKING:
    from actors.runtime import Runtime


def run(rt: Runtime, ticket: int, chunk: int | None = None) -> None:
    """Apply chunk `chunk` exactly once: the (ticket, chunk) key makes a second delivery a no-op."""
    view = rt.view(ticket)
    if view is None or chunk is None or next_step(view) != Step(APPLY, chunk):
        return
    assert view.spec is not None and view.parsed is not None
    spec = view.spec
    row = rt.ticket(ticket)
    with read_tx(rt.engine) as conn:
        dataset = catalog.dataset_by_id(conn, row.dataset_id)
    if dataset is None:
        raise StepFailed(f"dataset {spec.dataset!r} no longer exists")
    try:
        staged = decode_chunk(rt.blobs.read_bytes(chunk_key(view.uuid, chunk)))
    except FileNotFoundError:
        raise StepFailed(f"staged chunk {chunk} is missing; the file must be parsed again") from None
    validator = RowValidator(dataset.schema, view.parsed.columns)
    key_of = KeyReader(dataset.schema, view.parsed.columns)
    rows: list[tuple[int, int, ValidRow | str]] = []
    failed_keys: dict[int, str] = {}  # rows that failed validation but whose key could be read
    index = staged.first
    for line, cells in staged.rows:
        if isinstance(cells, str):  # the reader could not read this row: no cells, so no key either
            rows.append((index, line, cells))
        else:
            result = validator.validate(cells)
            if isinstance(result, str):
                result = _located(result, line)
                if (failed_key := key_of(cells)) is not None:
                    failed_keys[index] = failed_key
            rows.append((index, line, result))
        index += 1
    keys = {r.key for _, _, r in rows if not isinstance(r, str)} | set(failed_keys.values())
    # Atomic imports and dry runs write to the ticket's staging: later chunks see what earlier ones
    # (would have) written, and finalize merges it (atomic) or discards it (dry run).
    to_staging = spec.policy == "atomic" or spec.dry_run
    budget = failure_budget(spec, view.parsed.total_rows)
    with write_tx(rt.engine) as conn:
        locks.dataset_writes(conn, dataset.id)  # decide from what is there, not what another writer overtakes
        existing = records.fetch_existing(conn, dataset.id, keys, staged_ticket=ticket if to_staging else None)
        decision = decide_chunk(rows, existing, spec.mode, view.failed, budget, view.threshold_exceeded, failed_keys)
        records.write(conn, dataset.id, ticket, view.uuid, decision.writes, staged=to_staging)
        at = now()
        new: list[Event] = [
            ChunkApplied(
                at=at, chunk=chunk, first=staged.first, runs=tuple(decision.runs), failures=tuple(decision.failures),
                failed_existing=tuple(decision.failed_existing),
            )
        ]
        if decision.exceeded and not view.threshold_exceeded:
            new.append(ThresholdExceeded(at=at, failed=decision.failed, threshold=threshold_label(spec)))
        event_log.append(conn, ticket, view.seq, new)
        faults.hit("apply_chunk", "before_commit", chunk, conn)
    faults.hit("apply_chunk", "after_commit", chunk)
    rt.drive(ticket)
    faults.hit("apply_chunk", "after_drive", chunk)


def _located(result: ValidRow | str, line: int) -> ValidRow | str:
    """Prefix a row error with its line so every message names the row."""
    return f"line {line}: {result}" if isinstance(result, str) else result
