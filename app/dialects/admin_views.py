"""Admin-batch wire shapes: BaseCommandResponse, import entries, and the streamed result CSV."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from itertools import islice
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from msgspec.structs import replace

from actors.readers import BadRow, ReaderError
from app.errors import classify
from events.projections import FailureSource, ImportView, RowResult, iter_results

logger = logging.getLogger("importer.admin")

ENTRY_STATUS = {"c": "Created", "u": "Updated", "n": "Unchanged", "i": "Ignored", "f": "Failed", "s": "Skipped"}
BATCH_STATUS = {
    "accepted": "Queued", "processing": "Processing", "completed": "Completed", "failed": "Failed", "canceled": "Canceled",
}
RESULT_COLUMNS = ("ImportStatus", "ImportError")
# Spreadsheet apps run a cell starting with these as a formula (OWASP "CSV injection").
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\0")
_FLUSH_ROWS = 500


class AdminCommandResponse(msgspec.Struct):
    """The doc's BaseCommandResponse; `code` is the HTTP-style number (200, 400, 401, 404, 500)."""

    success: bool
    code: int
    errorMessage: str | None


class AdminBatchCreated(AdminCommandResponse):
    """BaseCommandResponse plus the id of the new batch."""

    batchId: str


class AdminImportEntry(msgspec.Struct):
    """One data row's outcome: 1-based row number (header excluded), file line when it failed."""

    rowNumber: int
    line: int | None
    status: str
    errorMessage: str | None


class AdminImportEntries(AdminCommandResponse):
    """GetImportEntries: the batch's state, its counts and one page of per-row entries."""

    batchId: str
    type: str
    status: str
    totalRows: int | None
    processedRows: int
    createdRows: int
    updatedRows: int
    unchangedRows: int
    failedRows: int
    skippedRows: int
    failureReason: str | None
    page: int
    pageSize: int
    totalCount: int
    totalPages: int
    entries: list[AdminImportEntry]


def ok() -> AdminCommandResponse:
    """The success answer."""
    return AdminCommandResponse(success=True, code=200, errorMessage=None)


def failure(code: int, message: str) -> AdminCommandResponse:
    """An error answer; code equals the HTTP status."""
    return AdminCommandResponse(success=False, code=code, errorMessage=message)


def admin_error(request: Request[Any, Any, Any], exc: Exception) -> Response[AdminCommandResponse]:
    """Every error as a BaseCommandResponse; HTTP status and `code` are 400, 401, 404 or 500."""
    seen = classify(exc, request, too_large="The file exceeds the maximum upload size.")
    status, message = seen.status, seen.message
    if status >= 500:
        message = "Internal server error; the request was not processed."
    elif seen.error is None and seen.extra:
        message = f"{message}: {seen.extra}"
    # The doc lists 400 for every refusal of the request (size included), 404 for a missing batch.
    code = status if status in (401, 404) else 500 if status >= 500 else 400
    return Response(failure(code, message), status_code=code, headers=seen.headers)


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses of an endpoint."""
    return {c: ResponseSpec(AdminCommandResponse, description="Error", generate_examples=False) for c in codes}


def render_entries(
    batch_id: str, type_name: str, view: ImportView | None, page: int, page_size: int,
    failures: FailureSource | None = None,
) -> AdminImportEntries:
    """One page of a batch's entries (no view yet: the batch awaits its file)."""
    total = view.rows_seen if view is not None else 0
    rows = page_results(view, (page - 1) * page_size, page_size, failures) if view is not None else []
    return AdminImportEntries(
        success=True,
        code=200,
        errorMessage=None,
        batchId=batch_id,
        type=type_name,
        status=BATCH_STATUS[view.state] if view is not None else "Created",
        totalRows=view.total_rows if view is not None else None,
        processedRows=view.processed if view is not None else 0,
        createdRows=view.created if view is not None else 0,
        updatedRows=view.updated if view is not None else 0,
        unchangedRows=view.unchanged if view is not None else 0,
        failedRows=view.failed if view is not None else 0,
        skippedRows=view.skipped if view is not None else 0,
        failureReason=view.reason if view is not None and view.state != "completed" else None,
        page=page,
        pageSize=page_size,
        totalCount=total,
        totalPages=(total + page_size - 1) // page_size,
        entries=[AdminImportEntry(r.index + 1, r.line, ENTRY_STATUS[r.outcome], r.error) for r in rows],
    )


def page_results(view: ImportView, offset: int, limit: int, failures: FailureSource | None = None) -> list[RowResult]:
    """Rows offset..offset+limit, skipping whole chunks before the page instead of expanding them."""
    kept = [c for c in view.outcomes if c.first + sum(n for _, n in c.runs) > offset]
    if not kept:
        return []
    start = max(0, offset - kept[0].first)
    return list(islice(iter_results(replace(view, outcomes=tuple(kept)), None, failures), start, start + limit))


def escape_cell(value: str | None) -> str:
    """A cell safe to open in a spreadsheet: a leading formula character gets a quote before it."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_LEADS) else value


def result_csv(
    view: ImportView, rows: Iterator[tuple[int, list[str | None]] | BadRow], failures: FailureSource | None = None
) -> Iterator[bytes]:
    """The input rows with ImportStatus and ImportError columns, as UTF-8 CSV, a few rows at a time."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    results = iter_results(view, None, failures)
    pending = next(results, None)
    width: int | None = None
    index = 0
    for item in _until_unreadable(rows):
        if width is None:  # the header row
            cells = [] if isinstance(item, BadRow) else list(item[1])
            width = len(cells)
            out.writerow([escape_cell(c) for c in cells] + list(RESULT_COLUMNS))
            continue
        while pending is not None and pending.index < index:
            pending = next(results, None)
        status, error = _row_status(view, pending if pending is not None and pending.index == index else None)
        if isinstance(item, BadRow):
            cells = []
            error = error or f"line {item.line}: {item.message}"
        else:
            cells = _fit(item[1], width)
        out.writerow([escape_cell(c) for c in cells] + [""] * (width - len(cells)) + [status, escape_cell(error)])
        index += 1
        if index % _FLUSH_ROWS == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if width is None:
        out.writerow(list(RESULT_COLUMNS))
    yield buf.getvalue().encode()


def _until_unreadable(
    rows: Iterator[tuple[int, list[str | None]] | BadRow],
) -> Iterator[tuple[int, list[str | None]] | BadRow]:
    """The rows until the file turns unreadable (the import saw the same and failed there)."""
    try:
        yield from rows
    except ReaderError as exc:
        logger.warning("result file cut short: %s", exc)


def _row_status(view: ImportView, result: RowResult | None) -> tuple[str, str | None]:
    if result is not None:
        return ENTRY_STATUS[result.outcome], result.error
    if not view.terminal:
        return "Pending", None
    return "Skipped", view.reason or "the row was not processed"


def _fit(cells: list[str | None], width: int) -> list[str | None]:
    """Drop trailing empty cells beyond the header, so status columns line up where they can."""
    if len(cells) <= width:
        return cells
    end = len(cells)
    while end > width and not cells[end - 1]:
        end -= 1
    return cells[:end]
