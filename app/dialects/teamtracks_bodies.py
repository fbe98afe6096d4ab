"""TeamTracks wire shapes: the job status document (streamed) and the error body."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from app.dialects.shared import epoch_ms
from app.dialects.streaming import joined
from events.projections import FailureSource, ImportView, iter_results
from events.record_ids import record_uuid

_encode = msgspec.json.Encoder().encode


class TeamTracksJobAccepted(msgspec.Struct):
    """Answer to POST /objectimport/{trackId}."""

    jobId: str


class TeamTracksJobError(msgspec.Struct):
    """One failed row: its row number in the file (header = row 1; 0 = the file as a whole)."""

    row: int
    message: str


class TeamTracksJobStatus(msgspec.Struct, omit_defaults=True):
    """GET /job/{jobId}; objectsCreated and errors appear once the job has finished."""

    finished: bool
    dateFinished: int
    successfullyCreated: int
    failedToCreate: int
    successfullyUpdated: int
    unchanged: int
    failedToUpdate: int
    objectsCreated: list[str] | msgspec.UnsetType = msgspec.UNSET
    errors: list[TeamTracksJobError] | msgspec.UnsetType = msgspec.UNSET


class TeamTracksError(msgspec.Struct):
    """Every error, shaped like the Azure API Management gateway's own: {statusCode, message}."""

    statusCode: int
    message: str


def job_head(view: ImportView) -> TeamTracksJobStatus:
    """The counts part of the job status, from the view alone."""
    return TeamTracksJobStatus(
        finished=view.terminal,
        dateFinished=epoch_ms(view.finished_at) if view.terminal else 0,
        successfullyCreated=view.created,
        # A failed row whose key could be read and named an existing record is a failed update.
        failedToCreate=view.failed - view.failed_existing,
        successfullyUpdated=view.updated,
        unchanged=view.unchanged,
        failedToUpdate=view.failed_existing,
    )


def render_job(view: ImportView, failures: FailureSource | None = None) -> Iterator[bytes]:
    """The job status JSON in pieces: ids and errors are streamed, never held as one list (errors
    are read from the log, a chunk at a time)."""
    head = _encode(job_head(view))
    if not view.terminal:
        yield head
        return
    yield head[:-1] + b',"objectsCreated":['
    yield from joined(_encode(record_uuid(view.uuid, r.index)) for r in iter_results(view, frozenset({"c"})))
    yield b'],"errors":['
    errors: Iterator[bytes] = (
        _encode(TeamTracksJobError(r.line or 0, r.error or "row failed"))
        for r in iter_results(view, frozenset({"f"}), failures)
    )
    if view.state not in ("completed", "reverted") and view.reason:
        whole = _encode(TeamTracksJobError(0, view.reason))
        errors = _chain(errors, whole)
    yield from joined(errors)
    yield b"]}"


def _chain(items: Iterator[bytes], last: bytes) -> Iterator[bytes]:
    yield from items
    yield last


def error_body(status: int, message: str) -> TeamTracksError:
    """The error document for a status."""
    return TeamTracksError(statusCode=status, message=message)
