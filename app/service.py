"""The service layer: start, cancel, revert and look up imports; every front door goes through here."""

from __future__ import annotations

import logging
import uuid as uuidlib

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from actors.blobs import BlobUnavailable
from actors.memory import release_memory
from actors.net import redact
from actors.readers import ReaderError, inspect_file
from actors.retry import retry_conflicts
from actors.runtime import Runtime
from app import ratelimit
from app.errors import BadRequest, Conflict, NotFound, Unavailable
from app.uploads import UploadedFile
from events import before_images, catalog, records
from events import log as event_log
from events.catalog import DatasetRow, TenantRow, TicketRow
from events.datasets import RowValidator, SchemaError
from events.db import read_tx, write_tx
from events.log import now
from events.mapping import resolve_columns
from events.projections import ImportView
from events.types import (
    Event,
    FileRefused,
    FileStored,
    ImportCanceled,
    ImportRequested,
    ImportSpec,
    RevertRequested,
)

logger = logging.getLogger("importer.service")


def dataset_for(rt: Runtime, tenant: TenantRow, name: str) -> DatasetRow:
    """The tenant's dataset, or 404."""
    with read_tx(rt.engine) as conn:
        dataset = catalog.get_dataset(conn, tenant.id, name)
    if dataset is None:
        raise NotFound(f"dataset {name!r} does not exist", code="unknown_dataset")
    return dataset


def check_upload(rt: Runtime, dataset: DatasetRow, spec: ImportSpec, upload: UploadedFile) -> str:
    """Refuse at submission what can be known then: empty or unreadable files, unmappable columns."""
    if upload.size == 0:
        raise BadRequest("the uploaded file is empty", code="empty_file")
    try:
        info = inspect_file(
            upload.path, separator=spec.separator, encoding=spec.encoding, sheet=spec.sheet,
            max_unpacked_bytes=rt.settings.max_unpacked_bytes,
        )
        columns = resolve_columns(dataset.schema, spec, info.first_row)
        RowValidator(dataset.schema, columns.fields)
    except ReaderError as exc:
        refusal = BadRequest(str(exc), code="invalid_file")
    except SchemaError as exc:
        raise BadRequest(str(exc), code="invalid_columns") from None
    else:
        if info.format != "csv":
            release_memory()  # a workbook's buffers (an XLS's shared strings, XLSX's) go back to the OS
        return str(info.format)
    release_memory()  # the reader's buffers (its traceback is gone with the except block) go back to the OS
    raise refusal


def check_mappings(dataset: DatasetRow, spec: ImportSpec) -> None:
    """Mappings must name fields of the dataset (known before any file is read)."""
    if not spec.mappings:
        return
    names = {n.lower() for n in dataset.schema.field_names()}
    unknown = [m for m in spec.mappings if m.strip().lower() not in names]
    if unknown:
        raise BadRequest(
            f"mappings name unknown fields: {', '.join(unknown)}; the dataset has: {', '.join(dataset.schema.field_names())}",
            code="unknown_field",
        )


def start_import(
    rt: Runtime,
    tenant: TenantRow,
    spec: ImportSpec,
    *,
    upload: UploadedFile | None = None,
    secret_uri: str | None = None,
    dedup_key: str | None = None,
) -> tuple[int, bool]:
    """Accept an import: ticket row and first events in one transaction, then enqueue. Returns (id, created)."""
    try:
        dataset = dataset_for(rt, tenant, spec.dataset)
        check_mappings(dataset, spec)
        fmt = check_upload(rt, dataset, spec, upload) if upload is not None else None
    except Exception:
        if upload is not None:
            upload.path.unlink(missing_ok=True)
        raise
    ticket_uuid = str(uuidlib.uuid4())
    secret_callback = None
    if spec.callback_url and (shown := redact(spec.callback_url)) != spec.callback_url:
        # The log (and every view and export of it) carries the redacted form; the delivery uses this.
        secret_callback, spec = spec.callback_url, msgspec.structs.replace(spec, callback_url=shown)
    key = f"sources/{ticket_uuid}"
    if upload is not None:
        store_upload(rt, key, upload)  # before the ticket exists: the log never names a missing file

    def attempt() -> tuple[int, bool]:
        with write_tx(rt.engine) as conn:
            if dedup_key is not None:
                existing = catalog.ticket_by_dedup(conn, tenant.id, dedup_key)
                if existing is not None:
                    return existing.id, False
            at = now()
            ratelimit.check_submission(conn, tenant.id, rt.settings.submit_rate_per_minute, at)
            ticket = catalog.insert_ticket(
                conn, uuid=ticket_uuid, tenant_id=tenant.id, dataset_id=dataset.id, dialect=spec.dialect,
                dedup_key=dedup_key, has_callback=bool(spec.callback_url), secret_uri=secret_uri, at=at,
                secret_callback=secret_callback,
            )
            new: list[Event] = [ImportRequested(at=at, tenant=tenant.name, spec=spec, uuid=ticket_uuid)]
            if upload is not None and fmt is not None:
                new.append(FileStored(at=at, blob=key, size=upload.size, sha256=upload.sha256, format=fmt, filename=upload.filename))
            event_log.append(conn, ticket, 0, new)
            return ticket, True

    created = False
    try:
        ticket, created = retry_conflicts(attempt)
    except IntegrityError:
        raise Conflict("a concurrent request created the same import; retry") from None
    finally:
        if upload is not None and not created:  # deduplicated or refused: the stored copy is nobody's
            _forget(rt, key)
    if created:
        _drive_after_commit(rt, ticket)
    return ticket, created


def store_upload(rt: Runtime, key: str, upload: UploadedFile) -> None:
    """Put the spooled upload in the blob store (streamed); a store that is down is a 503."""
    try:
        rt.blobs.put_file(key, upload.path)
    except BlobUnavailable as exc:
        raise Unavailable(f"the file could not be stored, so the import was not accepted; retry later ({exc})") from None
    finally:
        upload.path.unlink(missing_ok=True)


def _forget(rt: Runtime, key: str) -> None:
    """Remove a stored upload no ticket refers to (an orphan is harmless if this fails)."""
    try:
        rt.blobs.delete_tree(key)
    except BlobUnavailable:
        logger.warning("could not remove the unused upload %s", key, exc_info=True)


def refuse_file(rt: Runtime, ticket: int, upload: UploadedFile, reason: str) -> None:
    """Keep a later file for an import that already has one out, and say so in the ticket's log."""
    upload.path.unlink(missing_ok=True)

    def attempt() -> None:
        view = rt.view(ticket)
        assert view is not None
        refused = FileRefused(at=now(), reason=reason, filename=upload.filename, size=upload.size, sha256=upload.sha256)
        with write_tx(rt.engine) as conn:
            event_log.append(conn, ticket, view.seq, [refused])

    retry_conflicts(attempt)


def find_ticket(
    rt: Runtime, tenant: TenantRow, ticket_id: int, dialect: str | None = None
) -> tuple[TicketRow, ImportView]:
    """The tenant's ticket and its view, or 404 (also for another tenant's ticket, or, given a
    dialect, for a ticket another front door accepted)."""
    with read_tx(rt.engine) as conn:
        return find_ticket_in(conn, rt, tenant, ticket_id, dialect)


def find_ticket_in(
    conn: sa.Connection, rt: Runtime, tenant: TenantRow, ticket_id: int, dialect: str | None = None
) -> tuple[TicketRow, ImportView]:
    """find_ticket in the caller's transaction."""
    return _shown(conn, rt, catalog.get_ticket(conn, ticket_id, tenant.id), dialect, f"import {ticket_id} does not exist")


def find_ticket_by_uuid(
    rt: Runtime, tenant: TenantRow, ticket_uuid: str, dialect: str | None = None
) -> tuple[TicketRow, ImportView]:
    """The tenant's ticket by uuid, or 404 (given a dialect, also for another front door's)."""
    with read_tx(rt.engine) as conn:
        return _shown(conn, rt, catalog.ticket_by_uuid(conn, ticket_uuid, tenant.id), dialect, f"job {ticket_uuid} does not exist")


def _shown(
    conn: sa.Connection, rt: Runtime, row: TicketRow | None, dialect: str | None, missing: str
) -> tuple[TicketRow, ImportView]:
    """A found ticket and its view, or 404 `missing` (also for a ticket another front door accepted)."""
    if row is not None and dialect is not None and row.dialect != dialect:
        row = None
    view = rt.views.load(conn, row.id) if row is not None else None
    if row is None or view is None:
        raise NotFound(missing, code="unknown_import")
    return row, view


def cancel_import(rt: Runtime, tenant: TenantRow, ticket_id: int, reason: str = "canceled by the caller") -> ImportView:
    """Cancel a running import (its rows follow the commit policy); 409 once it has ended."""

    def attempt() -> ImportView:
        _, view = find_ticket(rt, tenant, ticket_id)
        if view.terminal:
            raise Conflict(f"import {ticket_id} has already ended ({view.state})", code="already_finished")
        skipped = max(0, (view.total_rows or 0) - view.rows_seen)
        with write_tx(rt.engine) as conn:
            if view.spec is not None and view.spec.dry_run:
                records.discard_staged(conn, ticket_id)  # a dry run's staging ends with it
            event_log.append(conn, ticket_id, view.seq, [ImportCanceled(at=now(), reason=reason, skipped=skipped)])
        return view

    retry_conflicts(attempt)
    _drive_after_commit(rt, ticket_id)
    return find_ticket(rt, tenant, ticket_id)[1]


def revert_import(rt: Runtime, tenant: TenantRow, ticket_id: int, *, force: bool = False) -> ImportView:
    """Start undoing a completed import (its chunks revert in the background); 409 when it cannot be."""

    def attempt() -> ImportView:
        _, view = find_ticket(rt, tenant, ticket_id)
        refusal = _revert_refusal(view)
        with write_tx(rt.engine) as conn:
            if refusal is None and view.created + view.updated and _images_gone(conn, view):
                refusal = (
                    "its before-images are gone (removed with its file after the retention period, or it predates revert support)",
                    "not_revertible",
                )
            if refusal is not None:
                raise Conflict(f"import {ticket_id} cannot be reverted: {refusal[0]}", code=refusal[1])
            event_log.append(conn, ticket_id, view.seq, [RevertRequested(at=now(), force=force)])
        return view

    retry_conflicts(attempt)
    _drive_after_commit(rt, ticket_id)
    return find_ticket(rt, tenant, ticket_id)[1]


def _images_gone(conn: sa.Connection, view: ImportView) -> bool:
    """Whether what a revert needs was removed: with the file after retention, or never kept (logs before revert)."""
    if view.file_removed:
        return True
    lean = view.parsed is not None and view.parsed.lean_images  # every import that needs an image has one
    return not lean and not before_images.count(conn, view.ticket)


def _revert_refusal(view: ImportView) -> tuple[str, str] | None:
    """Why this import cannot be reverted now (the sentence and the error code), or None."""
    if view.state == "reverted":
        return "it was already reverted", "already_reverted"
    if view.reverting:
        return "its revert is already under way", "already_reverting"
    if view.spec is not None and view.spec.dry_run:
        return "it was a dry run and wrote no record", "dry_run"
    if view.state != "completed":
        return f"only a completed import can be reverted, and this one is {view.state}", "not_completed"
    return None


def _drive_after_commit(rt: Runtime, ticket: int) -> None:
    """Enqueue the next step of a committed change; if the broker is down, say so and go on: the
    log already holds the change, and resume (at every worker start, and periodically for stalled
    tickets) re-drives it, so failing the request would only invite a duplicate submission."""
    try:
        rt.drive(ticket)
    except Exception:
        logger.warning("ticket %d: enqueue failed after commit; resume will re-drive it", ticket, exc_info=True)
