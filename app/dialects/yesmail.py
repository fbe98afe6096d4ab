"""The Yesmail dialect: reference-data file import from a URL, tickets, async results, schema."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream

from app import service
from app.auth import by_pair, runtime
from app.concurrency import in_thread
from app.dialects.shared import error_specs
from app.dialects.yesmail_bodies import (
    YesmailAsyncResults,
    YesmailError,
    YesmailSchema,
    YesmailTicket,
    error_body,
    render_results,
    render_schema,
    render_ticket,
    ticket_json,
)
from app.errors import BadRequest, NotFound, Unauthorized, classify, validation_text
from app.json_body import JSON_BODY_LIMIT, auth_then_json
from app.spec import parse_mappings, parse_separator, parse_threshold
from app.urls import prepare_callback, prepare_source
from events.catalog import TenantRow, TicketRow
from events.projections import ImportView
from events.types import ImportSpec

logger = logging.getLogger("importer.yesmail")

DIALECT = "yesmail"
_BAD_CREDENTIALS = "Invalid Api-User and/or Api-Key header value."
_STATE_KEY = "yesmail_tenant"

ApiUser = Annotated[
    str | None, HeaderParameter(name="Api-User", required=True, description="Your API user")
]
ApiKey = Annotated[
    str | None, HeaderParameter(name="Api-Key", required=True, description="Your API key")
]


class YesmailSource(msgspec.Struct, forbid_unknown_fields=True):
    """The `source` object: where the file is and how to read it."""

    uri: str
    headers: bool = False
    mappings: list[dict[str, int]] | dict[str, int] | None = None
    separator: str | None = None


class YesmailImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The JSON payload of POST /v2/reference-data/{dataset}/records/file-import."""

    source: YesmailSource
    errorThreshold: int | str | None = None
    importType: Literal["ignore", "update", "replace"] = "update"


def _authenticate(request: Request[Any, Any, Any]) -> TenantRow:
    tenant = by_pair(
        runtime(request), DIALECT, request.headers.get("api-user"), request.headers.get("api-key")
    )
    if tenant is None:
        raise Unauthorized(_BAD_CREDENTIALS)
    return tenant


def _authenticate_first(request: Request[Any, Any, Any]) -> None:
    """Check the credentials before anything reads the body: 401 wins over a malformed payload."""
    request.state[_STATE_KEY] = _authenticate(request)


def yesmail_tenant(
    request: Request[Any, Any, Any], api_user: ApiUser = None, api_key: ApiKey = None
) -> TenantRow:
    """Api-User + Api-Key headers (declared here for the schema; checked first by _authenticate_first)."""
    tenant = request.state.get(_STATE_KEY)
    return tenant if isinstance(tenant, TenantRow) else _authenticate(request)


def yesmail_error(request: Request[Any, Any, Any], exc: Exception) -> Response[YesmailError]:
    """Every error on these routes as {"error": {"status", "message"}} with the same HTTP status."""
    seen = classify(exc, request, too_large="The request body is larger than the limit.")
    message = seen.message
    if seen.status >= 500:
        message = "Internal server error; the request was not processed."
    elif seen.status == 400 and seen.error is None:
        message = f"Malformed request payload: {validation_text(seen.extra) or message}"
    return Response(error_body(seen.status, message), status_code=seen.status, headers=seen.headers)


def base_url(request: Request[Any, Any, Any]) -> str:
    """The absolute base for links: the configured public URL, else this request's."""
    configured = runtime(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def _ticket_id(raw: str) -> int:
    """Ticket and async-result ids are digit strings; anything else names nothing."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound(f"Ticket {raw!r} does not exist.")
    return int(raw)


def _find(
    request: Request[Any, Any, Any], tenant: TenantRow, raw: str
) -> tuple[TicketRow, ImportView]:
    """The tenant's Yesmail ticket, or 404 (also for another tenant's or another dialect's)."""
    try:
        return service.find_ticket(runtime(request), tenant, _ticket_id(raw), DIALECT)
    except NotFound:
        raise NotFound(f"Ticket {raw!r} does not exist.") from None


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return error_specs(YesmailError, *codes)


class YesmailApi(Controller):
    """Yesmail's v2 reference-data file import, tickets and async results."""

    path = "/v2"
    tags = ["yesmail"]
    dependencies = {"tenant": Provide(yesmail_tenant, sync_to_thread=True)}
    exception_handlers = {Exception: yesmail_error}

    @post(
        "/reference-data/{dataset:str}/records/file-import",
        status_code=202,
        summary="Import records into a dataset from a file at a URL",
        responses=_errors(400, 401, 404, 413),
        before_request=auth_then_json(_authenticate_first),
        request_max_body_size=JSON_BODY_LIMIT,
    )
    async def file_import(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        dataset: str,
        data: YesmailImportRequest,
        response_uri: Annotated[
            str | None,
            QueryParameter(name="responseUri", description="Where the final ticket is posted"),
        ] = None,
        response_ref: Annotated[
            str | None,
            QueryParameter(name="responseRef", description="Your reference, echoed back"),
        ] = None,
    ) -> Response[YesmailTicket]:
        """Accept the import (202) with the ticket and its Content-Location."""
        rt = runtime(request)
        count, percent = parse_threshold(data.errorThreshold, zero_means_none=True)
        base = base_url(request)
        source = await in_thread(prepare_source, rt, data.source.uri)
        callback = await in_thread(prepare_callback, rt, response_uri, "responseUri")
        spec = ImportSpec(
            dataset=dataset,
            mode=data.importType,
            policy="atomic",  # "no records will be updated or added" past the threshold
            threshold=count,
            threshold_percent=percent,
            headers=data.source.headers,
            mappings=parse_mappings(data.source.mappings),
            separator=parse_separator(data.source.separator)
            or ",",  # comma is the documented default
            source_uri=source.redacted,
            callback_url=callback,
            callback_ref=response_ref or None,
            dialect=DIALECT,
            extra={
                "user": request.headers.get("api-user", ""),
                "uri": base + request.url.path,
                "base": base,
            },
        )
        try:
            ticket, _ = await in_thread(
                service.start_import, rt, tenant, spec, secret_uri=source.secret
            )
        except NotFound as exc:
            raise NotFound(
                f"Reference data dataset {dataset!r} does not exist.", code=exc.code
            ) from None
        _, view = await in_thread(service.find_ticket, rt, tenant, ticket)
        return Response(
            render_ticket(view, base),
            status_code=202,
            headers={"Content-Location": f"{base}/v2/tickets/{ticket}"},
        )

    @get(
        "/tickets/{id:str}",
        sync_to_thread=True,
        summary="The status of a file import",
        responses=_errors(401, 404),
    )
    def ticket(self, request: Request[Any, Any, Any], tenant: TenantRow, id: str) -> YesmailTicket:  # noqa: A002
        """The ticket: state, message, events, request and response blocks."""
        _, view = _find(request, tenant, id)
        return render_ticket(view, base_url(request))

    @get(
        "/async-results/{id:str}",
        summary="Per-record results of a file import",
        responses={
            200: ResponseSpec(
                YesmailAsyncResults,
                description="Counts and per-record results",
                generate_examples=False,
            ),
            **_errors(401, 404),
        },
    )
    async def async_results(
        self, request: Request[Any, Any, Any], tenant: TenantRow, id: str
    ) -> Stream:  # noqa: A002
        """Counts, then completed, failed and ignored records by index (streamed)."""
        _, view = await in_thread(_find, request, tenant, id)
        return Stream(render_results(view, runtime(request).failures(view.ticket)), media_type="application/json")

    @get(
        "/reference-data/{dataset:str}",
        sync_to_thread=True,
        summary="A dataset's schema",
        responses=_errors(400, 401, 404),
    )
    def schema(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantRow,
        dataset: str,
        view: Annotated[str | None, QueryParameter(name="view", description="schema")] = None,
    ) -> YesmailSchema:
        """GET /v2/reference-data/{dataset}?view=schema: the fields and their types."""
        if view not in (None, "", "schema"):
            raise BadRequest(f"view must be 'schema', got {view!r}")
        try:
            found = service.dataset_for(runtime(request), tenant, dataset)
        except NotFound:
            raise NotFound(f"Reference data dataset {dataset!r} does not exist.") from None
        return render_schema(found)


def render_webhook(view: ImportView, ticket: TicketRow, base: str) -> bytes:
    """The callback body: the final ticket (response.ref = responseRef)."""
    return ticket_json(view, base or (view.spec.extra.get("base", "") if view.spec else ""))


ROUTES: list[Any] = [YesmailApi]
WEBHOOK_RENDERERS = {DIALECT: render_webhook}
