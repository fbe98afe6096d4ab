"""The native API's wire shapes, rendered from an ImportView."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar.openapi import ResponseSpec

from events.datasets import DatasetSchema
from events.decisions import threshold_label
from events.projections import ImportView, RowResult
from events.records import RecordRow
from events.types import OUTCOME_NAMES

OUTCOME_CODES = {v: k for k, v in OUTCOME_NAMES.items()}


def iso(at: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z."""
    if at is None:
        return None
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class RowCounts(msgspec.Struct):
    total: int | None
    processed: int
    created: int
    updated: int
    unchanged: int
    ignored: int
    failed: int
    skipped: int
    rolled_back: int


class FileOut(msgspec.Struct):
    name: str | None
    size: int
    sha256: str
    format: str


class ImportOut(msgspec.Struct):
    """An import as the native API shows it."""

    id: int
    uuid: str
    dataset: str
    state: str
    mode: str
    policy: str
    dry_run: bool
    threshold: str | None
    percentage: int
    rows: RowCounts
    file: FileOut | None
    source_uri: str | None
    threshold_exceeded: bool
    error: str | None
    requested_at: str | None
    updated_at: str | None
    finished_at: str | None
    webhook: dict[str, Any] | None
    links: dict[str, str]
    # once asked for: records deleted, restored, left as conflicts (and why it stopped, if a step failed for good)
    revert: dict[str, int | str] | None = None


def render_import(view: ImportView) -> ImportOut:
    """The native representation of an import."""
    spec = view.spec
    assert spec is not None
    limited = spec.threshold is not None or spec.threshold_percent is not None
    webhook = None
    if spec.callback_url:
        wh = view.webhook
        webhook = {
            "url": spec.callback_url,
            "attempts": wh.attempts,
            "delivered": wh.delivered_at is not None,
            "abandoned": wh.abandoned,
            "last_status": wh.last_status,
            "last_error": wh.last_error,
        }
    base = f"/imports/{view.ticket}"
    return ImportOut(
        id=view.ticket,
        uuid=view.uuid,
        dataset=spec.dataset,
        state=view.state,
        mode=spec.mode,
        policy=spec.policy,
        dry_run=spec.dry_run,
        threshold=threshold_label(spec) if limited else None,
        percentage=view.percentage,
        rows=RowCounts(
            total=view.total_rows, processed=view.processed, created=view.created, updated=view.updated,
            unchanged=view.unchanged, ignored=view.ignored, failed=view.failed, skipped=view.skipped,
            rolled_back=view.rolled_back,
        ),
        file=FileOut(view.file.filename, view.file.size, view.file.sha256, view.file.format) if view.file else None,
        source_uri=spec.source_uri,
        threshold_exceeded=view.threshold_exceeded,
        error=view.reason if view.state in ("failed", "canceled") or view.threshold_exceeded else None,
        requested_at=iso(view.requested_at),
        updated_at=iso(view.updated_at),
        finished_at=iso(view.finished_at),
        webhook=webhook,
        links={
            "self": base, "events": f"{base}/events", "results": f"{base}/results", "cancel": f"{base}/cancel",
            "revert": f"{base}/revert",
        },
        revert=None if view.revert is None else {
            "deleted": view.revert.deleted, "restored": view.revert.restored, "conflicts": view.revert.conflicts,
            **({"failed": view.revert.failed} if view.revert.failed is not None else {}),
        },
    )


class RecordOut(msgspec.Struct):
    """A dataset record: its id, its key as the key fields' values, and its fields."""

    id: str
    key: dict[str, Any]
    values: dict[str, Any]


def render_record(schema: DatasetSchema, record: RecordRow) -> RecordOut:
    """A record as the native API shows it: {"key": {"email": "ann@example.com"}}, not the stored key text."""
    stored = msgspec.json.decode(record.key)
    if isinstance(stored, list) and len(stored) == len(schema.key):
        key = dict(zip(schema.key, stored, strict=True))
    else:  # stored under an earlier key definition: show the present key fields' values
        key = {name: record.values.get(name) for name in schema.key}
    return RecordOut(record.id, key, record.values)


class ImportList(msgspec.Struct):
    """A page of the tenant's imports, newest first; next_before asks for the page after it."""

    items: list[ImportOut]
    next_before: int | None


class ResultOut(msgspec.Struct, omit_defaults=True):
    index: int
    outcome: str
    line: int | None = None
    error: str | None = None


def render_result(r: RowResult) -> ResultOut:
    """One row's outcome."""
    return ResultOut(r.index, OUTCOME_NAMES[r.outcome], r.line, r.error)


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    """What went wrong: a stable code, a sentence, and where (a form field, validation details)."""

    code: str
    message: str
    field: str | None = None
    details: Any = None  # the framework's validation details, when it refused the request itself


class NativeError(msgspec.Struct):
    """Every native error answer: {"error": {"code", "message"}}."""

    error: ErrorDetail


ERROR_RESPONSES = {
    status: ResponseSpec(NativeError, description=description, generate_examples=False)
    for status, description in (
        (400, "The request is malformed or refused (code and message say why)"),
        (401, "Missing or invalid bearer token"),
        (404, "No such import or dataset for this tenant"),
        (409, "Conflicts with the current state (an import that already ended, say)"),
        (413, "The upload is larger than the limit"),
        (415, "Not a multipart or JSON body"),
        (429, "Too many submissions; see Retry-After"),
    )
}

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_REPORT = ResponseSpec(
    str, description="CSV: the file's header and failed rows as read, plus row_number and error",
    media_type="text/csv", generate_examples=False,
)
XLSX_REPORT = ResponseSpec(
    bytes, description="XLSX: the same report as a workbook, the error column highlighted",
    media_type=XLSX_TYPE, generate_examples=False,
)
