"""The admin-batch dialect: create a batch, upload its CSV, poll its entries, download the result file."""

from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, HeaderParameter, QueryParameter
from litestar.response import Stream

from actors.readers import ReaderError, inspect_file
from actors.runtime import Runtime
from app import service
from app.auth import bearer_token, by_token, runtime
from app.concurrency import in_thread
from app.dialects.admin_bodies import (
    AdminBatchCreated,
    AdminCommandResponse,
    AdminImportEntries,
    admin_error,
    error_responses,
    ok,
    render_entries,
    result_csv,
)
from app.errors import BadRequest, NotFound, Unauthorized
from app.json_body import JSON_BODY_LIMIT, auth_then_json
from app.reports import source_of
from app.uploads import receive_form
from events import batches, catalog
from events.catalog import TenantRow
from events.db import read_tx, write_tx
from events.log import now
from events.projections import ImportView
from events.types import ImportSpec

logger = logging.getLogger("importer.admin")

DIALECT = "admin"
TYPES = {
    "Transactions": "transactions",
    "PaymentsInfo": "payments_info",
    "TransferTransactions": "transfer_transactions",
    "TransferPaymentsInfo": "transfer_payments_info",
}
_TYPE_BY_LOWER = {name.lower(): name for name in TYPES}
_SECOND_FILE = "The batch already has its file; this file was not imported (one file per batch)."
_PAGE_SIZE = 100
# Query names as the doc's reference spells them; every one is also read in any other casing.
AuthHeader = Annotated[str | None, HeaderParameter(name="Authorization", required=True, description="Bearer <token>")]
BatchQuery = Annotated[str | None, QueryParameter(name="BatchId", required=True, description="Batch GUID (also batchId)")]
TypeQuery = Annotated[str | None, QueryParameter(name="Type", description=" | ".join(TYPES))]
CompanyQuery = Annotated[str | None, QueryParameter(name="CompanyId", description="Company GUID")]
ProjectQuery = Annotated[str | None, QueryParameter(name="CompanyProjectId", description="Company project GUID")]


class Batch(msgspec.Struct, frozen=True):
    """A tenant's import batch."""

    id: str
    type: str
    company_id: str | None
    company_project_id: str | None


def admin_tenant(
    request: Request[Any, Any, Any],
    authorization: AuthHeader = None,
) -> TenantRow:
    """`Authorization: Bearer <token>` with the tenant's admin token."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Missing credentials: send 'Authorization: Bearer <token>'.")
    tenant = by_token(runtime(request), DIALECT, token)
    if tenant is None:
        raise Unauthorized("Invalid bearer token.")
    return tenant


def _query(request: Request[Any, Any, Any], *names: str) -> str | None:
    """A query parameter in any casing (batchId, BatchId, batchid, ...)."""
    wanted = {n.lower() for n in names}
    for key, value in request.query_params.multi_items():
        if key.lower() in wanted and value.strip():
            return str(value).strip()
    return None


def _guid(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise BadRequest(f"{name} must be a GUID, got {value!r}.") from None


def _type_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = _TYPE_BY_LOWER.get(value.strip().lower())
    if name is None:
        raise BadRequest(f"Type must be one of {', '.join(TYPES)}; got {value!r}.")
    return name


def _create_batch(rt: Runtime, tenant: TenantRow, type_name: str, company: str | None, project: str | None) -> str:
    service.dataset_for(rt, tenant, TYPES[type_name])  # the target must be defined before a batch names it
    batch_id = str(uuidlib.uuid4())
    with write_tx(rt.engine) as conn:
        batches.create_batch(conn, batch_id, tenant.id, type_name, company, project, now())
    return batch_id


def _find_batch(rt: Runtime, tenant: TenantRow, raw: str | None) -> tuple[Batch, ImportView | None]:
    """The tenant's batch and the view of its import (None before its file arrives); 404 otherwise."""
    if raw is None:
        raise BadRequest("batchId is required.")
    try:
        batch_id = str(uuidlib.UUID(raw))
    except ValueError:
        batch_id = ""
    with read_tx(rt.engine) as conn:
        row = batches.find_batch(conn, batch_id, tenant.id)
        ticket = catalog.ticket_by_dedup(conn, tenant.id, f"batch:{batch_id}") if row else None
        view = rt.views.load(conn, ticket.id) if ticket else None
    if row is None:
        raise NotFound(f"No import batch exists with the ID {raw!r}.")
    return Batch(row.id, row.type, row.company_id, row.company_project_id), view


def _check_same(given: str | None, stored: str | None, name: str) -> None:
    if given is not None and stored is not None and given != stored:
        raise BadRequest(f"{name} {given} does not match the batch's {name} {stored}.")


def _require_csv(rt: Runtime, path: Any, size: int) -> None:
    if size == 0:
        raise BadRequest("Invalid file format: the file is empty.")
    try:
        info = inspect_file(path, max_unpacked_bytes=rt.settings.max_unpacked_bytes)
    except ReaderError as exc:
        raise BadRequest(f"Invalid file format: not valid CSV ({exc}).") from None
    if info.format != "csv":
        raise BadRequest(f"Invalid file format: not valid CSV (the file is an {info.format.upper()} workbook).")


class AdminImports(Controller):
    """Batches, their CSV upload, entries and result file; Bearer auth with the admin token."""

    path = "/api"
    tags = ["admin"]
    dependencies = {"tenant_row": Provide(admin_tenant, sync_to_thread=True)}
    exception_handlers = {Exception: admin_error}

    @post(["/adm/import/batch", "/admin/importBatches"], status_code=200, summary="Create an import batch",
          responses=error_responses(400, 401), before_request=auth_then_json(admin_tenant),
          request_max_body_size=JSON_BODY_LIMIT)
    async def create_batch(
        self,
        request: Request[Any, Any, Any],
        tenant_row: TenantRow,
        type_: TypeQuery = None,
        company_id: CompanyQuery = None,
        company_project_id: ProjectQuery = None,
        data: Annotated[dict[str, Any] | None, Body(description='Optional JSON {"Type", "CompanyId", "CompanyProjectId"}')] = None,
    ) -> AdminBatchCreated:
        """A batch must exist before its file is uploaded; answers its batchId."""
        fields = {k.lower(): v for k, v in (data or {}).items() if v not in (None, "")}
        for name in ("type", "companyid", "companyprojectid"):
            fields.setdefault(name, _query(request, name))
        for key, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{key} must be a string, got {value!r}.")
        type_name = _type_name(fields.get("type"))
        if type_name is None:
            raise BadRequest(f"Type is required: one of {', '.join(TYPES)}.")
        company = _guid(fields.get("companyid"), "CompanyId")
        project = _guid(fields.get("companyprojectid"), "CompanyProjectId")
        try:
            batch_id = await in_thread(_create_batch, runtime(request), tenant_row, type_name, company, project)
        except NotFound as exc:
            raise BadRequest(f"Type {type_name} cannot be imported: {exc.message}.") from None
        return AdminBatchCreated(success=True, code=200, errorMessage=None, batchId=batch_id)

    @post(["/adm/import/file", "/admin/importBatches/file"], status_code=200, summary="Upload Import File",
          responses=error_responses(400, 401, 404))
    async def upload_file(
        self,
        request: Request[Any, Any, Any],
        tenant_row: TenantRow,
        batch_id: BatchQuery = None,
        type_: TypeQuery = None,
        company_id: CompanyQuery = None,
        company_project_id: ProjectQuery = None,
    ) -> AdminCommandResponse:
        """Multipart CSV with a header row; imported in the background, failed rows keep the rest."""
        rt = runtime(request)
        batch, _ = await in_thread(_find_batch, rt, tenant_row, _query(request, "batchId"))
        type_name = _type_name(_query(request, "type", "importType")) or batch.type
        if type_name != batch.type:
            raise BadRequest(f"Type {type_name} does not match the batch's type {batch.type}.")
        _check_same(_guid(_query(request, "companyId"), "CompanyId"), batch.company_id, "CompanyId")
        _check_same(_guid(_query(request, "companyProjectId"), "CompanyProjectId"), batch.company_project_id, "CompanyProjectId")
        form = await receive_form(
            request, rt.blobs, max_bytes=rt.settings.max_upload_bytes,
            max_parts=rt.settings.max_form_parts, max_field_bytes=rt.settings.max_form_field_bytes,
        )
        try:
            if form.file is None:
                raise BadRequest("A CSV file is required (multipart form field 'file').")
            await in_thread(_require_csv, rt, form.file.path, form.file.size)
            _, view = await in_thread(_find_batch, rt, tenant_row, batch.id)
        except Exception:
            form.discard()
            raise
        if view is not None:  # the batch already has its file: deduplicated, as the BatchId note says
            await in_thread(service.refuse_file, rt, view.ticket, form.file, _SECOND_FILE)
            return ok(_SECOND_FILE)
        filename = form.file.filename or form.fields.get("FileName") or None
        extra = {"batchId": batch.id, "type": batch.type}
        extra.update({k: v for k, v in (("companyId", batch.company_id), ("companyProjectId", batch.company_project_id)) if v})
        spec = ImportSpec(
            dataset=TYPES[batch.type], mode="update", policy="partial", filename=filename,
            dialect=DIALECT, name=batch.id, extra=extra,
        )
        upload = form.file
        try:
            ticket, created = await in_thread(service.start_import, rt, tenant_row, spec, upload=upload, dedup_key=f"batch:{batch.id}")
        except NotFound as exc:
            raise BadRequest(f"Type {batch.type} cannot be imported: {exc.message}.") from None
        if not created:  # a concurrent upload to the same batch got there first
            await in_thread(service.refuse_file, rt, ticket, upload, _SECOND_FILE)
            return ok(_SECOND_FILE)
        return ok()

    @get(["/adm/import/entries", "/admin/importBatches/entries"], summary="GetImportEntries: per-row entries, paginated",
         responses=error_responses(400, 401, 404))
    async def entries(
        self,
        request: Request[Any, Any, Any],
        tenant_row: TenantRow,
        batch_id: BatchQuery = None,
        page: Annotated[int | None, QueryParameter(name="page", description="1-based page number (default 1)")] = None,
        page_size: Annotated[int | None, QueryParameter(name="pageSize", description="Entries per page (default 100)")] = None,
    ) -> AdminImportEntries:
        """The batch's status, counts and one page of row entries."""
        rt = runtime(request)
        number = _int(_query(request, "page"), "page", 1, 1, None)
        size = _int(_query(request, "pageSize"), "pageSize", _PAGE_SIZE, 1, rt.settings.results_page_max)
        batch, view = await in_thread(_find_batch, rt, tenant_row, _query(request, "batchId"))
        failures = rt.failures(view.ticket) if view is not None else None
        return await in_thread(render_entries, batch.id, batch.type, view, number, size, failures)

    @get(["/adm/import/result", "/admin/importBatches/result"], summary="Download the result file (CSV)",
         responses={200: ResponseSpec(str, description="CSV: the input rows plus ImportStatus and ImportError",
                                      media_type="text/csv", generate_examples=False), **error_responses(400, 401, 404)})
    async def result_file(
        self,
        request: Request[Any, Any, Any],
        tenant_row: TenantRow,
        batch_id: BatchQuery = None,
    ) -> Stream:
        """The input rows with each row's status and error, streamed from the stored file."""
        rt = runtime(request)
        batch, view = await in_thread(_find_batch, rt, tenant_row, _query(request, "batchId"))
        if view is None or view.file is None or view.spec is None:
            raise NotFound(f"Batch {batch.id} has no uploaded file yet.")
        if view.parsed is None and view.terminal:
            raise BadRequest(f"Batch {batch.id} failed before its rows were read: {view.reason}")
        if view.file_removed:
            raise NotFound(f"Batch {batch.id}'s uploaded file was removed after the retention period.")
        source = await in_thread(source_of, rt, view)  # object storage: a streamed local copy, given back after
        return Stream(
            result_csv(view, source.rows(), rt.failures(view.ticket)),
            media_type="text/csv",  # the framework adds "; charset=utf-8" to text types itself
            headers={"Content-Disposition": f'attachment; filename="import-result-{batch.id}.csv"'},
        )


def _int(value: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}.") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{name} must be {bound}, got {number}.")
    return number


ROUTES: list[Any] = [AdminImports]
