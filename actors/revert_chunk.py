"""Step `revert_chunk`: put back one chunk of a completed import's before-images and record it, in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import faults
from events import before_images, locks
from events import log as event_log
from events.db import write_tx
from events.flow import REVERT, Step, next_step
from events.log import now
from events.types import Event, ImportReverted, RevertChunkApplied

if TYPE_CHECKING:
    from actors.runtime import Runtime


def run(rt: Runtime, ticket: int, chunk: int | None = None) -> None:
    """Revert chunk `chunk` exactly once: the log's (ticket, chunk) key makes a second delivery a no-op."""
    view = rt.view(ticket)
    if view is None or chunk is None or view.revert is None or next_step(view) != Step(REVERT, chunk):
        return
    revert = view.revert
    row = rt.ticket(ticket)
    with write_tx(rt.engine) as conn:
        locks.dataset_writes(conn, row.dataset_id)  # no import writes these keys while we read and put them back
        page = before_images.revert_page(
            conn, row.dataset_id, ticket, view.uuid, revert.phase, revert.last_key, rt.settings.chunk_size,
            force=revert.force,
        )
        at = now()
        new: list[Event] = [
            RevertChunkApplied(
                at=at, chunk=chunk, deleted=page.deleted, restored=page.restored, conflicts=page.conflicts,
                last_key=page.last_key, phase=page.phase,
            )
        ]
        if not page.more:
            before_images.forget(conn, ticket)
            new.append(ImportReverted(at=at))
        event_log.append(conn, ticket, view.seq, new)
        faults.hit("revert_chunk", "before_commit", chunk, conn)
    faults.hit("revert_chunk", "after_commit", chunk)
    rt.drive(ticket)
