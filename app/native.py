"""The native API: imports and datasets, Bearer-token auth per tenant."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post, put
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Stream

from actors.readers import FileInfo
from app import service
from app.auth import native_tenant, native_tenant_in, native_token, runtime
from app.concurrency import in_thread
from app.errors import BadRequest, Conflict, NotFound
from app.json_body import JSON_BODY_LIMIT, auth_then_json, check_depth, small_body
from app.loop_reads import loop_reads
from app.names import identifier_problem
from app.native_bodies import (
    CSV_REPORT,
    ERROR_RESPONSES,
    OUTCOME_CODES,
    XLSX_REPORT,
    XLSX_TYPE,
    ImportList,
    ImportOut,
    render_import,
    render_record,
    render_result,
)
from app.reports import SourceRow, error_csv, source_of
from app.spec import parse_bool, parse_encoding, parse_mappings, parse_separator, parse_threshold
from app.sse import live_events
from app.uploads import Form, receive_form
from app.urls import prepare_callback, prepare_source
from app.workbook import stream_file, write_error_workbook
from events import catalog, records
from events import log as event_log
from events.catalog import TenantRow
from events.datasets import SchemaError, parse_schema, schema_json
from events.db import read_tx, write_tx
from events.log import now
from events.projections import ImportView, iter_results
from events.types import ImportSpec

MODES = ("insert", "update", "replace", "ignore")
MAX_OFFSET = 2**53  # far past any file's rows; islice (and JSON numbers) stop at 2**63 - 1
POLICIES = ("atomic", "partial")


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """JSON body of POST /imports for a URL source (uploads use multipart with the same names)."""

    dataset: str
    uri: str
    mode: Literal["insert", "update", "replace", "ignore"] = "update"
    policy: Literal["atomic", "partial"] = "partial"
    threshold: int | str | None = None
    headers: bool = True
    mappings: dict[str, int] | None = None
    separator: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    callback_url: str | None = None
    callback_ref: str | None = None
    dry_run: bool = False


def _choice(value: str | None, allowed: tuple[str, ...], name: str, default: str) -> str:
    if value is None or value == "":
        return default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}", field=name)
    return value


def _spec_from(fields: dict[str, Any], filename: str | None) -> ImportSpec:
    dataset = fields.get("dataset")
    if not dataset or not isinstance(dataset, str):
        raise BadRequest("'dataset' is required", field="dataset")
    count, percent = parse_threshold(fields.get("threshold"))
    callback = fields.get("callback_url") or None
    return ImportSpec(
        dataset=dataset,
        mode=_choice(fields.get("mode"), MODES, "mode", "update"),  # type: ignore[arg-type]
        policy=_choice(fields.get("policy"), POLICIES, "policy", "partial"),  # type: ignore[arg-type]
        threshold=count,
        threshold_percent=percent,
        headers=parse_bool(fields.get("headers"), "headers", True),
        mappings=parse_mappings(fields.get("mappings")),
        separator=parse_separator(fields.get("separator")),
        encoding=parse_encoding(fields.get("encoding")),
        sheet=fields.get("sheet") or None,
        filename=filename,
        callback_url=callback,
        callback_ref=fields.get("callback_ref") or None,
        dialect="native",
        dry_run=parse_bool(fields.get("dry_run"), "dry_run", False),
    )


class NativeImports(Controller):
    """POST /imports and everything about one import."""

    path = "/imports"
    tags = ["native"]
    dependencies = {"tenant": Provide(native_tenant, sync_to_thread=True)}

    @post("/", status_code=202, summary="Start an import (multipart upload, or JSON with a uri)", responses=ERROR_RESPONSES)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantRow) -> Response[ImportOut]:
        rt = runtime(request)
        idem = request.headers.get("idempotency-key")
        dedup = f"idem:{idem}" if idem else None
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            body = await small_body(request)
            check_depth(body)
            try:
                req = msgspec.json.decode(body, type=ImportRequest)
            except msgspec.ValidationError as exc:
                raise BadRequest(f"invalid request body: {exc}") from None
            except msgspec.DecodeError:
                raise BadRequest("request body is not valid JSON") from None
            fields = msgspec.structs.asdict(req)
            fields["headers"] = req.headers
            spec = _spec_from(fields, None)
            source = await in_thread(prepare_source, rt, req.uri)
            await in_thread(prepare_callback, rt, spec.callback_url, "callback_url")
            spec = msgspec.structs.replace(spec, source_uri=source.redacted)
            ticket, _ = await in_thread(service.start_import, rt, tenant, spec, secret_uri=source.secret, dedup_key=dedup)
        else:
            form: Form = await receive_form(
                request, rt.blobs, max_bytes=rt.settings.max_upload_bytes,
                max_parts=rt.settings.max_form_parts, max_field_bytes=rt.settings.max_form_field_bytes,
            )
            try:
                if form.file is None:
                    raise BadRequest("the multipart body has no 'file' part", field="file")
                spec = _spec_from(form.fields, form.file.filename)
                await in_thread(prepare_callback, rt, spec.callback_url, "callback_url")
            except Exception:
                form.discard()
                raise
            ticket, _ = await in_thread(service.start_import, rt, tenant, spec, upload=form.file, dedup_key=dedup)
        _, view = await in_thread(service.find_ticket, rt, tenant, ticket)
        return Response(render_import(view), status_code=202, headers={"Location": f"/imports/{ticket}"})

    @get("/", sync_to_thread=True, summary="The tenant's imports, newest first", responses=ERROR_RESPONSES)
    def list_imports(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        before: int | None = Parameter(default=None, ge=1, le=2**63 - 1, description="only imports with a smaller id"),
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> ImportList:
        rt = runtime(request)
        with read_tx(rt.engine) as conn:
            ids = catalog.recent_ticket_ids(conn, tenant.id, before, limit + 1)
            views = [rt.views.load(conn, t) for t in ids[:limit]]
        items = [render_import(v) for v in views if v is not None and v.spec is not None]
        return ImportList(items=items, next_before=ids[limit - 1] if len(ids) > limit else None)

    @get("/{ticket:int}", summary="An import's status and counts", responses=ERROR_RESPONSES)
    async def status(self, request: Request[Any, Any, Any], ticket: int) -> ImportOut:
        # The hot polling path: one short read (on the loop's thread with SQLite) that checks the
        # token too, rather than the `tenant` dependency's thread hop and transaction of its own.
        token = native_token(request)
        rt = runtime(request)

        def read(conn: sa.Connection) -> ImportView:
            return service.find_ticket_in(conn, rt, native_tenant_in(conn, token), ticket)[1]

        return render_import(await loop_reads(request).run(read))

    @get("/{ticket:int}/events", sync_to_thread=True, responses=ERROR_RESPONSES,
         summary="An import's event log (a live Server-Sent Events stream with Accept: text/event-stream)")
    def events(self, request: Request[Any, Any, Any], tenant: TenantRow, ticket: int) -> Any:
        rt = runtime(request)
        service.find_ticket(rt, tenant, ticket)
        if "text/event-stream" in request.headers.get("accept", ""):
            return live_events(rt, ticket, request)
        with read_tx(rt.engine) as conn:
            stored = event_log.read(conn, ticket)
        return {"ticket": ticket, "events": [{"seq": s.seq, **msgspec.to_builtins(s.event)} for s in stored]}

    @get("/{ticket:int}/results", sync_to_thread=True, summary="Per-row outcomes, paginated", responses=ERROR_RESPONSES)
    def results(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        ticket: int,
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
        limit: int = Parameter(default=100, ge=1, le=10_000),
        outcome: str | None = Parameter(default=None, description="created|updated|unchanged|ignored|failed|skipped"),
    ) -> dict[str, Any]:
        rt = runtime(request)
        _, view = service.find_ticket(rt, tenant, ticket)
        wanted = None
        if outcome:
            codes = [OUTCOME_CODES.get(o.strip()) for o in outcome.split(",")]
            if None in codes:
                raise BadRequest(f"outcome must be among {', '.join(OUTCOME_CODES)}", field="outcome")
            wanted = frozenset(c for c in codes if c)
        items = [render_result(r) for r in islice(iter_results(view, wanted, rt.failures(ticket)), offset, offset + limit + 1)]
        more = len(items) > limit
        return {
            "ticket": ticket,
            "offset": offset,
            "limit": limit,
            "items": [msgspec.to_builtins(i) for i in items[:limit]],
            "next_offset": offset + limit if more else None,
        }

    @get("/{ticket:int}/errors.csv", summary="The failed rows as they were in the file, plus row_number and error",
         responses={200: CSV_REPORT, **ERROR_RESPONSES})
    async def errors_csv(self, request: Request[Any, Any, Any], tenant: TenantRow, ticket: int) -> Stream:
        view, info, rows = await _failed_source(request, tenant, ticket)
        failures = runtime(request).failures(ticket)
        return Stream(error_csv(view, rows, failures), media_type="text/csv; charset=utf-8", headers=_attachment(f"import-{ticket}-errors.csv"))

    @get("/{ticket:int}/errors.xlsx", summary="The error report as a workbook (XLSX uploads)",
         responses={200: XLSX_REPORT, **ERROR_RESPONSES})
    async def errors_xlsx(self, request: Request[Any, Any, Any], tenant: TenantRow, ticket: int) -> Stream:
        view, info, rows = await _failed_source(request, tenant, ticket)
        if info.format != "xlsx":
            raise Conflict(
                f"import {ticket} read a {info.format.upper()} file; its error report is /imports/{ticket}/errors.csv",
                code="not_a_workbook",
            )
        target = runtime(request).blobs.temp_path(".xlsx")
        try:
            await in_thread(write_error_workbook, view, rows, runtime(request).failures(ticket), target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Stream(stream_file(target), media_type=XLSX_TYPE, headers=_attachment(f"import-{ticket}-errors.xlsx"))

    @post("/{ticket:int}/cancel", status_code=200, sync_to_thread=True, summary="Cancel a running import", responses=ERROR_RESPONSES)
    def cancel(self, request: Request[Any, Any, Any], tenant: TenantRow, ticket: int) -> ImportOut:
        return render_import(service.cancel_import(runtime(request), tenant, ticket))


    @post("/{ticket:int}/revert", status_code=202, sync_to_thread=True, responses=ERROR_RESPONSES,
          summary="Undo a completed import: delete what it created, put back what it changed")
    def revert(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        ticket: int,
        force: bool = Parameter(default=False, description="also undo records that a later import changed since"),
    ) -> Response[ImportOut]:
        view = service.revert_import(runtime(request), tenant, ticket, force=force)
        return Response(render_import(view), status_code=202, headers={"Location": f"/imports/{ticket}"})


class NativeDatasets(Controller):
    """Datasets: define (PUT), read, and page through records."""

    path = "/datasets"
    tags = ["native"]
    dependencies = {"tenant": Provide(native_tenant, sync_to_thread=True)}

    @put("/{name:str}", sync_to_thread=True, summary="Create or redefine a dataset", responses=ERROR_RESPONSES,
         before_request=auth_then_json(native_tenant), request_max_body_size=JSON_BODY_LIMIT)
    def put_dataset(self, request: Request[Any, Any, Any], tenant: TenantRow, name: str, data: dict[str, Any]) -> Response[dict[str, Any]]:
        _check_name(name)
        try:
            schema = parse_schema(data)
        except SchemaError as exc:
            raise BadRequest(str(exc), code="invalid_schema") from None
        with write_tx(runtime(request).engine) as conn:
            _, created = catalog.put_dataset(conn, tenant.id, name, schema, now())
        body = {"name": name, **msgspec.json.decode(schema_json(schema))}
        return Response(body, status_code=201 if created else 200)

    @get("/{name:str}", sync_to_thread=True, summary="A dataset's schema and size", responses=ERROR_RESPONSES)
    def get_dataset(self, request: Request[Any, Any, Any], tenant: TenantRow, name: str) -> dict[str, Any]:
        rt = runtime(request)
        dataset = service.dataset_for(rt, tenant, name)
        with read_tx(rt.engine) as conn:
            count = records.count_records(conn, dataset.id)
        return {"name": name, **msgspec.json.decode(schema_json(dataset.schema)), "records": count}

    @get("/{name:str}/records", sync_to_thread=True, summary="A dataset's records, paginated by cursor", responses=ERROR_RESPONSES)
    def list_records(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        name: str,
        after: int = Parameter(default=0, ge=0),
        limit: int = Parameter(default=100, ge=1, le=10_000),
    ) -> dict[str, Any]:
        rt = runtime(request)
        dataset = service.dataset_for(rt, tenant, name)
        with read_tx(rt.engine) as conn:
            page, cursor = records.list_records(conn, dataset.id, after=after, limit=limit)
        return {"items": [msgspec.to_builtins(render_record(dataset.schema, r)) for r in page], "next_after": cursor}


async def _failed_source(request: Request[Any, Any, Any], tenant: TenantRow, ticket: int) -> tuple[ImportView, FileInfo, Iterator[SourceRow]]:
    """The tenant's import, how its file reads, and its rows (read lazily, as the report streams)."""
    rt = runtime(request)
    _, view = await in_thread(service.find_ticket, rt, tenant, ticket)
    source = await in_thread(source_of, rt, view)
    return view, source.info, source.rows()


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _check_name(name: str) -> None:
    if (problem := identifier_problem(name)) is not None:
        raise BadRequest(f"dataset {problem}", field="name")


__all__ = ["NativeDatasets", "NativeImports", "NotFound"]
