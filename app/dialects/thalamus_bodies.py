"""Thalamus wire shapes: the ImportFile document and the {"errors": {...}} body."""

from __future__ import annotations

from itertools import islice

import msgspec

from app.dialects.shared import epoch_ms
from events.catalog import TicketRow
from events.projections import FailureSource, ImportView, iter_results

MAX_LISTED_ERRORS = 100  # row errors spelled out in analysisResultJson; the rest are counted

# Our view's state -> (state, internationalizedState, stateInternationalizableKey).
STATES = {
    "PROCESSING": ("Processing", "Processing"),
    "FINISHED": ("Finished", "Finished"),
    "FINISHED_WITH_ERRORS": ("Finished with errors", "FinishedWithErrors"),
    "ERROR": ("Error", "Error"),
    "CANCELED": ("Canceled", "Canceled"),
}
_XML = "<com.thalamus.aaa.MediumContextData>\n  <touchpointId>{}</touchpointId>\n  <asyncExcution>false</asyncExcution>\n</com.thalamus.aaa.MediumContextData>"


class Owner(msgspec.Struct):
    """The account that owns the import and the import type."""

    id: int
    entityType: int


class MediumContextData(msgspec.Struct):
    """The medium the import came through: the touchpoint; the rest is unused here."""

    touchpointId: int | None
    touchpointCountryId: int | None = None
    communicationId: int | None = None
    activityId: int | None = None
    direction: str | None = None
    location: str | None = None
    asyncExcution: bool = False
    tags: list[str] | None = None
    source: str | None = None
    countriesIds: list[int] | None = None
    mediumDate: int | None = None


class ImportFile(msgspec.Struct):
    """POST /api/v4/import/file and GET /api/v4/import/status/{id}: every field, always present."""

    id: int
    creationDate: int
    modificationDate: int
    creationOperator: int
    modificationOperator: int
    name: str | None
    fileName: str | None
    fileType: str
    owner: Owner
    relatedEntityType: int | None
    importDate: int
    userId: int | None
    partnerDatasourceId: int | None
    mediumContextData: MediumContextData
    mediumContextDataJson: str
    rows: int
    rowsOk: int
    rowsWithErrors: int
    rowsSkipped: int
    rowsRollbacked: int
    rowsRollbackedWithErrors: int
    state: str
    percentageProcessed: int
    totalToProcess: int
    url: str | None
    fileImportType: str | None
    fileSize: int
    analysisResult: str | None
    analysisResultJson: str | None
    internationalizedState: str
    stateInternationalizableKey: str


class ThalamusErrors(msgspec.Struct):
    """Every error answer: {"errors": {"<field>": "<Code>", ...}}."""

    errors: dict[str, str]


def thalamus_state(view: ImportView) -> str:
    """PROCESSING until the end; FINISHED, FINISHED_WITH_ERRORS (failed rows), ERROR or CANCELED."""
    if view.state in ("completed", "reverted"):
        return "FINISHED_WITH_ERRORS" if view.failed else "FINISHED"
    if view.state == "failed":
        return "ERROR"
    if view.state == "canceled":
        return "CANCELED"
    return "PROCESSING"


def _percentage(view: ImportView) -> int:
    """Whole percent processed; a canceled import shows how far it got."""
    if view.state == "canceled":
        total = view.total_rows
        return min(100, view.rows_seen * 100 // total) if total else 0
    return view.percentage


def _analysis(view: ImportView, failures: FailureSource | None) -> tuple[str | None, str | None]:
    """Why the import ended badly, and its first row errors: null when there is nothing to say."""
    if not view.failed and view.state not in ("failed", "canceled"):
        return None, None
    errors = [
        {"row": r.line or 0, "index": r.index, "message": r.error or "row failed"}
        for r in islice(iter_results(view, frozenset({"f"}), failures), MAX_LISTED_ERRORS)
    ]
    summary = (
        view.reason
        if view.state in ("failed", "canceled") and view.reason
        else f"{view.failed} rows with errors"
    )
    doc = {
        "reason": summary,
        "rowsWithErrors": view.failed,
        "errors": errors,
        "moreErrors": max(0, view.failed - len(errors)),
    }
    return summary, msgspec.json.encode(doc).decode()


def render_import(view: ImportView, ticket: TicketRow, failures: FailureSource | None = None) -> ImportFile:
    """The ImportFile document for a ticket, from its view (and the tenant id of its row); `failures`
    reads a cached view's row failures from the log."""
    spec = view.spec
    assert spec is not None
    state = thalamus_state(view)
    international, key = STATES[state]
    touchpoint = spec.extra.get("touchpointId", "")
    touchpoint_id = int(touchpoint) if touchpoint.isdigit() else None
    parsed_at = next((m.at for m in view.milestones if m.kind == "parsed"), view.requested_at)
    rolled_back = any(m.kind == "rolled_back" and m.rows for m in view.milestones)
    analysis, analysis_json = _analysis(view, failures)
    file = view.file
    return ImportFile(
        id=view.ticket,
        creationDate=epoch_ms(view.requested_at),
        modificationDate=epoch_ms(view.updated_at),
        creationOperator=0,
        modificationOperator=0,
        name=spec.name,
        fileName=file.filename if file and file.filename else spec.filename,
        fileType="EXCEL" if file is not None and file.format in ("xlsx", "xls") else "CSV",
        owner=Owner(id=ticket.tenant_id, entityType=int(spec.extra.get("type", "0"))),
        relatedEntityType=None,
        importDate=epoch_ms(parsed_at),
        userId=None,
        partnerDatasourceId=None,
        mediumContextData=MediumContextData(touchpointId=touchpoint_id),
        mediumContextDataJson=_XML.format(touchpoint_id if touchpoint_id is not None else ""),
        rows=view.total_rows or 0,
        rowsOk=max(0, view.completed - view.rolled_back),
        rowsWithErrors=view.failed,
        rowsSkipped=view.skipped + view.ignored,
        rowsRollbacked=view.rolled_back,
        rowsRollbackedWithErrors=view.failed if rolled_back else 0,
        state=state,
        percentageProcessed=_percentage(view),
        totalToProcess=0 if view.terminal else max(0, (view.total_rows or 0) - view.processed),
        url=None,
        fileImportType=None,
        fileSize=file.size if file else 0,
        analysisResult=analysis,
        analysisResultJson=analysis_json,
        internationalizedState=international,
        stateInternationalizableKey=key,
    )


def errors_body(errors: dict[str, str]) -> ThalamusErrors:
    """The error document."""
    return ThalamusErrors(errors=errors)
