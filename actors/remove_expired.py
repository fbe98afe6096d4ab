"""Remove finished tickets' files (and leftover chunks) once the retention period has passed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from actors.chunks import chunks_prefix
from actors.retry import retry_conflicts
from actors.runtime import Runtime
from events import before_images
from events import log as event_log
from events.db import read_tx, write_tx
from events.log import now
from events.types import FileRemoved

logger = logging.getLogger("importer.retention")


def remove_expired(rt: Runtime, at: datetime | None = None, limit: int = 100) -> list[int]:
    """Delete the blobs (and the before-images a revert would need) of tickets that ended more
    than `blob_retention_hours` ago; returns them.

    The blobs go first, then FileRemoved is appended: a crash in between only means the next
    sweep deletes nothing again. FileStored stays in the log, so the file's sha256 does too.
    """
    hours = rt.settings.blob_retention_hours
    if hours <= 0:
        return []
    cutoff = (at or datetime.now(UTC)) - timedelta(hours=hours)
    with read_tx(rt.engine) as conn:
        ids = event_log.expired_files(conn, cutoff, limit)
    removed = []
    for ticket in ids:
        view = rt.view(ticket)
        if view is None or view.file is None or view.file_removed:
            continue
        rt.blobs.delete_tree(view.file.blob)
        rt.blobs.delete_tree(chunks_prefix(view.uuid))
        blob = view.file.blob

        def append(ticket: int = ticket, blob: str = blob) -> None:
            current = rt.view(ticket)
            if current is None or current.file_removed:
                return  # another worker's sweep got there first
            with write_tx(rt.engine) as conn:
                if current.revert is None:  # a revert under way still needs them
                    before_images.forget(conn, ticket)  # revert is offered while the file is kept
                event_log.append(conn, ticket, current.seq, [FileRemoved(at=now(), blob=blob)])

        retry_conflicts(append)
        removed.append(ticket)
    if removed:
        logger.info("removed the files of %d ticket(s) past retention: %s", len(removed), removed[:20])
    return removed
