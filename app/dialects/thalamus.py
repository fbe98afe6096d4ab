"""The Thalamus dialect: POST /api/v4/import/file, GET /api/v4/import/status/{id}, and a cancel."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter

from app import service
from app.auth import by_pair, runtime
from app.concurrency import in_thread
from app.dialects.shared import error_specs
from app.dialects.thalamus_bodies import ImportFile, ThalamusErrors, errors_body, render_import
from app.errors import ApiError, classify, validation_text
from app.names import display_name_problem
from app.uploads import receive_form
from events.catalog import TenantRow, TicketRow
from events.db import read_tx
from events.projections import ImportView
from events.tables import credentials
from events.types import ImportSpec

logger = logging.getLogger("importer.thalamus")

DIALECT = "thalamus"
TYPES = {
    25006: "physical_location",
    25004: "company",
    25011: "partner_sales",
    25012: "partner_stock",
}
MAX_NAME = 255
DUPLICATED_NAME = {
    "ProcessorInfo": "DuplicatedName",
    "execution.ProcessorInfo": "execution.ProcessorInfo: DuplicatedName",
}
# Engine error codes -> (field, Thalamus code); the status stays the engine's unless noted in the handler.
_CODES = {
    "unknown_dataset": ("type", "ImportTypeNotEnabled"),
    "empty_file": ("file", "EmptyFile"),
    "invalid_file": ("file", "InvalidFileType"),
    "invalid_columns": ("file", "InvalidColumns"),
    "unknown_import": ("id", "ImportNotFound"),
    "already_finished": ("id", "ImportAlreadyFinished"),
    "too_large": ("file", "FileTooLarge"),
    "unsupported_media_type": ("file", "FileRequired"),
}

_ROUTING = {404: "NotFound", 405: "MethodNotAllowed"}
PREFIX = "/api/v4/import"

TouchpointQuery = Annotated[
    str | None,
    QueryParameter(
        name="touchpoint", description="Touchpoint code (or the Thalamus-Touchpoint header)"
    ),
]
TokenQuery = Annotated[
    str | None,
    QueryParameter(name="token", description="Session token (or the Thalamus-Token header)"),
]
TouchpointHeader = Annotated[
    str | None,
    HeaderParameter(name="Thalamus-Touchpoint", description="Touchpoint code (or ?touchpoint=)"),
]
TokenHeader = Annotated[
    str | None, HeaderParameter(name="Thalamus-Token", description="Session token (or ?token=)")
]


class ThalamusError(ApiError):
    """A refusal in Thalamus' own words: the errors object and the HTTP status."""

    def __init__(self, status: int, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())))
        self.status = status
        self.errors = errors


def _refuse(field: str, code: str, detail: str | None = None, status: int = 400) -> ThalamusError:
    errors = {field: code}
    if detail:
        errors[f"execution.{field}"] = f"execution.{field}: {detail}"
    return ThalamusError(status, errors)


class Caller(msgspec.Struct, frozen=True):
    """The authenticated tenant and the numeric id of the touchpoint it came through."""

    tenant: TenantRow
    touchpoint_id: int


def thalamus_caller(
    request: Request[Any, Any, Any],
    touchpoint: TouchpointQuery = None,
    token: TokenQuery = None,
    touchpoint_header: TouchpointHeader = None,
    token_header: TokenHeader = None,
) -> Caller:
    """touchpoint + token, as query parameters or Thalamus-* headers."""
    code = touchpoint or touchpoint_header
    secret = token or token_header
    if not code:
        raise ThalamusError(400, {"partnerDataSource": "TouchpointCodeRequired"})
    rt = runtime(request)
    with read_tx(rt.engine) as conn:
        found = conn.execute(
            sa.select(credentials.c.id).where(
                credentials.c.dialect == DIALECT, credentials.c.ident == code
            )
        ).scalar()
    if found is None:
        raise ThalamusError(400, {"partnerDataSource": "InvalidTouchpointCode"})
    if not secret:
        raise ThalamusError(401, {"token": "TokenRequired"})
    tenant = by_pair(rt, DIALECT, code, secret)
    if tenant is None:
        raise ThalamusError(401, {"token": "InvalidToken"})
    return Caller(tenant, int(found))


def thalamus_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ThalamusErrors]:
    """Every error on these routes as {"errors": {...}}."""
    if isinstance(exc, ThalamusError):
        return Response(errors_body(exc.errors), status_code=exc.status)
    seen = classify(exc, request, too_large="")
    if seen.error is not None:
        field, code = _CODES.get(seen.code, (seen.field or "request", "InvalidRequest"))
        status = 400 if seen.code == "unknown_dataset" or seen.status == 415 else seen.status
        body = {field: code, f"execution.{field}": f"execution.{field}: {seen.message}"}
        return Response(errors_body(body), status_code=status, headers=seen.headers)
    if seen.status == 413:
        return Response(errors_body({"file": "FileTooLarge"}), status_code=413, headers=seen.headers)
    if seen.status >= 500:
        return Response(errors_body({"server": "InternalError"}), status_code=500)
    if seen.status in _ROUTING:  # no route under /api/v4/import matched the method and path
        where = f"execution.request: {request.method} {request.url.path}: {seen.message}"
        body = {"request": _ROUTING[seen.status], "execution.request": where}
        return Response(errors_body(body), status_code=seen.status, headers=seen.headers)
    extra = [e for e in (seen.extra or []) if isinstance(e, dict)]
    if any(e.get("key") == "import_type" for e in extra):
        return Response(errors_body({"type": "InvalidImportType"}), status_code=400)
    detail = validation_text(extra) or seen.message
    body = {"request": "InvalidRequest", "execution.request": f"execution.request: {detail}"}
    return Response(errors_body(body), status_code=seen.status, headers=seen.headers)


def _import_type(query: int | None, request: Request[Any, Any, Any], fields: dict[str, str]) -> int:
    raw: Any = query if query is not None else request.headers.get("type") or fields.get("type")
    if raw is None or raw == "":
        raise _refuse("type", "ImportTypeRequired", "give type=25006, 25004, 25011 or 25012")
    try:
        number = int(raw)
    except ValueError:
        raise ThalamusError(400, {"type": "InvalidImportType"}) from None
    if number not in TYPES:
        raise _refuse(
            "type", "InvalidImportType", f"{number} is not one of 25006, 25004, 25011, 25012"
        )
    return number


def _name(query: str | None, request: Request[Any, Any, Any], fields: dict[str, str]) -> str:
    name = (query or request.headers.get("name") or fields.get("name") or "").strip()
    if not name:
        raise _refuse("name", "NameRequired", "give the import a name")
    if len(name) > MAX_NAME:
        raise _refuse("name", "NameTooLong", f"a name has at most {MAX_NAME} characters")
    if (problem := display_name_problem(name)) is not None:
        raise _refuse("name", "InvalidName", problem)
    return name


def _find(rt: Any, caller: Caller, raw: str) -> tuple[TicketRow, ImportView]:
    """The caller's Thalamus import, or 404 (also another tenant's or another dialect's)."""
    missing = ThalamusError(404, {"id": "ImportNotFound"})
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise missing
    try:
        return service.find_ticket(rt, caller.tenant, int(raw), DIALECT)
    except ApiError:
        raise missing from None


def _responses(*codes: int) -> dict[int, ResponseSpec]:
    return error_specs(ThalamusErrors, *codes)


class ThalamusImports(Controller):
    """Thalamus v4 file import: upload, status, cancel."""

    path = PREFIX
    tags = ["thalamus"]
    dependencies = {"caller": Provide(thalamus_caller, sync_to_thread=True)}
    exception_handlers = {Exception: thalamus_error}

    @post(
        "/file",
        status_code=200,
        summary="Import a file (multipart 'file')",
        responses=_responses(400, 401, 413),
    )
    async def import_file(
        self,
        request: Request[Any, Any, Any],
        caller: Caller,
        name: Annotated[
            str | None,
            QueryParameter(name="name", description="Name of the import, unique per account"),
        ] = None,
        import_type: Annotated[
            int | None, QueryParameter(name="type", description="25006 | 25004 | 25011 | 25012")
        ] = None,
    ) -> ImportFile:
        """Start an import of the uploaded file; answers with the ImportFile as it now stands."""
        rt = runtime(request)
        form = await receive_form(
            request,
            rt.blobs,
            max_bytes=rt.settings.max_upload_bytes,
            max_parts=rt.settings.max_form_parts,
            max_field_bytes=rt.settings.max_form_field_bytes,
        )
        try:
            label = _name(name, request, form.fields)
            number = _import_type(import_type, request, form.fields)
            if form.file is None:
                raise _refuse("file", "FileRequired", "send the file as the multipart part 'file'")
        except Exception:
            form.discard()
            raise
        spec = ImportSpec(
            dataset=TYPES[number],
            mode="update",  # new rows are created, existing ones (by key) updated
            policy="partial",  # a row's error does not undo the others
            headers=True,
            filename=form.file.filename,
            dialect=DIALECT,
            name=label,
            extra={"type": str(number), "touchpointId": str(caller.touchpoint_id)},
        )
        ticket, created = await in_thread(
            service.start_import,
            rt,
            caller.tenant,
            spec,
            upload=form.file,
            dedup_key=f"thalamus-name:{label}",
        )
        if not created:
            raise ThalamusError(400, dict(DUPLICATED_NAME))
        row, view = await in_thread(service.find_ticket, rt, caller.tenant, ticket)
        return render_import(view, row, rt.failures(ticket))

    @get(
        "/status/{id:str}",
        sync_to_thread=True,
        summary="The status of an import",
        responses=_responses(400, 401, 404),
    )
    def status(self, request: Request[Any, Any, Any], caller: Caller, id: str) -> ImportFile:  # noqa: A002
        """The ImportFile as it now stands."""
        rt = runtime(request)
        row, view = _find(rt, caller, id)
        return render_import(view, row, rt.failures(row.id))

    @get(
        "/status",
        sync_to_thread=True,
        summary="The status of an import, its id given as a query parameter or header",
        responses=_responses(400, 401, 404),
    )
    def status_by_param(
        self,
        request: Request[Any, Any, Any],
        caller: Caller,
        id_query: Annotated[str | None, QueryParameter(name="id", description="ID of the file (or the id header)")] = None,
        id_header: Annotated[str | None, HeaderParameter(name="id", description="ID of the file (or ?id=)")] = None,
    ) -> ImportFile:
        """The doc lists `id` as "Query / Header" too: ?id=274 or an `id: 274` header."""
        raw = (id_query or id_header or "").strip()
        if not raw:
            raise _refuse("id", "IdRequired", "give the import's id: /status/{id}, ?id= or an id header")
        row, view = _find(runtime(request), caller, raw)
        return render_import(view, row)

    @post(
        "/cancel/{id:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Cancel a running import",
        responses=_responses(400, 401, 404, 409),
    )
    def cancel(self, request: Request[Any, Any, Any], caller: Caller, id: str) -> ImportFile:  # noqa: A002
        """Stop the import: rows already imported stay, the rest are skipped; state CANCELED."""
        rt = runtime(request)
        row, _ = _find(rt, caller, id)
        view = service.cancel_import(rt, caller.tenant, row.id)
        return render_import(view, row, rt.failures(row.id))


ROUTES: list[Any] = [ThalamusImports]
# Errors no route handler saw (an unknown path or method under the prefix) get this dialect's shape.
ERROR_PREFIXES = {PREFIX: thalamus_error}
