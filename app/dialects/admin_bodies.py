"""Admin-batch wire shapes: BaseCommandResponse, import entries, and the streamed result CSV."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from msgspec.structs import replace

from actors.readers import BadRow
from app.dialects.shared import error_specs
from app.errors import classify
from app.reports import SourceRow, csv_stream, escape_cell, fit, until_unreadable, with_results
from events.projections import FailureSource, ImportView, RowResult, iter_results, listed_outcomes
from events.types import OUTCOME_NAMES

ENTRY_STATUS = {code: name.capitalize() for code, name in OUTCOME_NAMES.items()}
BATCH_STATUS = {
    "accepted": "Queued", "processing": "Processing", "completed": "Completed", "failed": "Failed", "canceled": "Canceled",
    "reverted": "Completed",  # undone since through the native API; the batch itself completed
}
RESULT_COLUMNS = ("ImportStatus", "ImportError")


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


def ok(message: str | None = None) -> AdminCommandResponse:
    """The success answer (with a message when something was nonetheless left undone)."""
    return AdminCommandResponse(success=True, code=200, errorMessage=message)


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
    return error_specs(AdminCommandResponse, *codes)


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
        failureReason=view.reason if view is not None and view.state not in ("completed", "reverted") else None,
        page=page,
        pageSize=page_size,
        totalCount=total,
        totalPages=(total + page_size - 1) // page_size,
        entries=[AdminImportEntry(r.index + 1, r.line, ENTRY_STATUS[r.outcome], r.error) for r in rows],
    )


def page_results(view: ImportView, offset: int, limit: int, failures: FailureSource | None = None) -> list[RowResult]:
    """Rows offset..offset+limit, skipping whole chunks before the page instead of expanding them."""
    kept = [c for c in listed_outcomes(view) if c.first + sum(n for _, n in c.runs) > offset]
    if not kept:
        return []
    start = max(0, offset - kept[0].first)
    return list(islice(iter_results(replace(view, outcomes=tuple(kept)), None, failures), start, start + limit))


def result_csv(view: ImportView, rows: Iterator[SourceRow], failures: FailureSource | None = None) -> Iterator[bytes]:
    """The input rows with ImportStatus and ImportError columns, as UTF-8 CSV, a few rows at a time."""
    return csv_stream(_result_lines(view, rows, failures))


def _result_lines(view: ImportView, rows: Iterator[SourceRow], failures: FailureSource | None) -> Iterator[list[str]]:
    rows = until_unreadable(rows)
    first = next(rows, None)
    if first is None:
        yield list(RESULT_COLUMNS)
        return
    header = [] if isinstance(first, BadRow) else list(first[1])
    width = len(header)
    yield [escape_cell(c) for c in header] + list(RESULT_COLUMNS)
    for _, item, result in with_results(rows, iter_results(view, None, failures)):
        status, error = _row_status(view, result)
        if isinstance(item, BadRow):
            cells: list[str | None] = []
            error = error or f"line {item.line}: {item.message}"
        else:
            cells = fit(item[1], width)
        yield [escape_cell(c) for c in cells] + [""] * (width - len(cells)) + [status, escape_cell(error)]


def _row_status(view: ImportView, result: RowResult | None) -> tuple[str, str | None]:
    if result is not None:
        return ENTRY_STATUS[result.outcome], result.error
    if not view.terminal:
        return "Pending", None
    return "Skipped", view.reason or "the row was not processed"
