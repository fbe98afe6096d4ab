"""Step `finalize`: end the import (merge or roll back atomic staging) and record the terminal event."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors import faults
from actors.blobs import BlobUnavailable
from actors.chunks import chunks_prefix
from events import locks, records
from events import log as event_log
from events.db import write_tx
from events.flow import FINALIZE, Step, next_step
from events.log import now
from events.types import Event, ImportCompleted, ImportFailed, RolledBack

if TYPE_CHECKING:
    from actors.runtime import Runtime

logger = logging.getLogger("importer.finalize")


def run(rt: Runtime, ticket: int, _chunk: int | None = None) -> None:
    """Commit or discard the import's effect and append its terminal event, in one transaction."""
    view = rt.view(ticket)
    if view is None or next_step(view) != Step(FINALIZE) or view.spec is None:
        return
    atomic = view.spec.policy == "atomic"
    dry_run = view.spec.dry_run
    row = rt.ticket(ticket)
    at = now()
    new: list[Event]
    with write_tx(rt.engine) as conn:
        if view.terminal:  # ended early (canceled, failed): discard what an atomic import staged
            records.discard_staged(conn, ticket)
            new = [RolledBack(at=at, rows=view.staged_rows)]
        elif view.threshold_exceeded:
            skipped = max(0, (view.total_rows or 0) - view.rows_seen)
            reason = view.reason or "error threshold exceeded"
            new = []
            if atomic or dry_run:
                records.discard_staged(conn, ticket)
            if atomic:
                new.append(RolledBack(at=at, rows=view.created + view.updated))
                reason += "; no records were added or updated"
            new.append(ImportFailed(at=at, reason=reason, skipped=skipped))
        elif dry_run:  # the report is complete; what the import would have written goes
            records.discard_staged(conn, ticket)
            new = [ImportCompleted(at=at)]
        elif atomic:
            locks.dataset_writes(conn, row.dataset_id)
            # Its chunks decided against the records as they were then: merge only if they still are.
            stale = records.stale_staging(conn, row.dataset_id, ticket)
            if stale is None:
                records.merge_staged(conn, row.dataset_id, ticket)
                new = [ImportCompleted(at=at)]
            else:
                records.discard_staged(conn, ticket)
                new = [RolledBack(at=at, rows=view.created + view.updated), ImportFailed(at=at, reason=_overtaken(stale))]
        else:
            new = [ImportCompleted(at=at)]
        event_log.append(conn, ticket, view.seq, new)
        faults.hit("finalize", "before_commit", None, conn)
    faults.hit("finalize", "after_commit")
    try:
        rt.blobs.delete_tree(chunks_prefix(view.uuid))
    except BlobUnavailable as exc:  # not worth holding the callback for: the retention sweep removes them
        logger.warning("ticket %d: parsed chunks not removed yet: %s", ticket, exc)
    rt.drive(ticket)


def _overtaken(stale: records.StaleStaging) -> str:
    """Why an atomic import whose records another import changed while it ran was refused."""
    key = stale.first_key if len(stale.first_key) <= 100 else stale.first_key[:99] + "…"
    return (
        f"another import changed {stale.changed} of this import's records while it ran (first: key {key}); "
        "no records were added or updated; submit the file again"
    )
