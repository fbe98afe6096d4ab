"""The TeamTracks dialect: POST /objectimport/{trackId} and GET /job/{jobId}."""

from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.response import Stream

from app import service
from app.auth import by_pair, runtime
from app.concurrency import in_thread
from app.dialects.shared import error_specs
from app.dialects.teamtracks_bodies import (
    TeamTracksError,
    TeamTracksJobAccepted,
    TeamTracksJobStatus,
    error_body,
    render_job,
)
from app.errors import BadRequest, NotFound, Unauthorized, classify
from app.uploads import receive_form
from events.catalog import TenantRow
from events.types import ImportSpec

logger = logging.getLogger("importer.teamtracks")

DIALECT = "teamtracks"
_MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
_INVALID_KEY = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
)


def teamtracks_tenant(
    request: Request[Any, Any, Any],
    tenant: Annotated[str | None, HeaderParameter(name="tenant", required=True, description="Your tenant id")] = None,
    subscription_key: Annotated[
        str | None, HeaderParameter(name="Ocp-Apim-Subscription-Key", required=True, description="Your subscription key")
    ] = None,
    authorization: Annotated[str | None, HeaderParameter(name="Authorization", required=True, description="Bearer <token>")] = None,
) -> TenantRow:
    """All three headers: tenant + subscription key, and a bearer token of the same tenant."""
    rt = runtime(request)
    if not subscription_key:
        raise Unauthorized(_MISSING_KEY)
    if not tenant:
        raise Unauthorized("Access denied due to missing tenant header.")
    by_key = by_pair(rt, DIALECT, tenant, subscription_key)
    if by_key is None:
        raise Unauthorized(_INVALID_KEY)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Unauthorized. Access token is missing or invalid.")
    by_bearer = by_pair(rt, "teamtracks-bearer", tenant, token.strip())
    if by_bearer is None or by_bearer.id != by_key.id:
        raise Unauthorized("Unauthorized. Access token is missing or invalid.")
    return by_key


def teamtracks_error(request: Request[Any, Any, Any], exc: Exception) -> Response[TeamTracksError]:
    """Every error on these routes as {"statusCode", "message"} with the same HTTP status."""
    seen = classify(exc, request, too_large="request body is larger than the upload limit")
    message = seen.message
    if seen.status >= 500:
        message = "Internal server error; the request was not processed."
    elif seen.status == 400 and seen.error is None and seen.extra:
        message = f"{message}: {seen.extra}"
    return Response(error_body(seen.status, message), status_code=seen.status, headers=seen.headers)


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return error_specs(TeamTracksError, *codes)


class TeamTracksImports(Controller):
    """Object import from a file and job status, with TeamTracks' three auth headers."""

    path = "/"
    tags = ["teamtracks"]
    dependencies = {"tenant_row": Provide(teamtracks_tenant, sync_to_thread=True)}
    exception_handlers = {Exception: teamtracks_error}

    @post(
        "/objectimport/{trackId:str}",
        status_code=200,
        summary="Import objects from an xlsx, xls or csv file into a track",
        responses=_errors(400, 401, 404, 413, 415),
    )
    async def import_objects(
        self, request: Request[Any, Any, Any], tenant_row: TenantRow, trackId: str  # noqa: N803 - the doc's name
    ) -> Response[TeamTracksJobAccepted]:
        """Start a job: the file part `file` is stored and imported in the background."""
        rt = runtime(request)
        form = await receive_form(
            request, rt.blobs, max_bytes=rt.settings.max_upload_bytes,
            max_parts=rt.settings.max_form_parts, max_field_bytes=rt.settings.max_form_field_bytes,
        )
        if form.file is None:
            form.discard()
            raise BadRequest("The request has no 'file' part: send the file as multipart form field 'file'.")
        spec = ImportSpec(
            dataset=trackId,
            mode="update",  # create new objects, update existing ones by key, count unchanged
            policy="partial",
            filename=form.file.filename,
            dialect=DIALECT,
            name=form.file.filename,
            extra={"trackId": trackId},
        )
        try:
            ticket, _ = await in_thread(service.start_import, rt, tenant_row, spec, upload=form.file)
        except NotFound as exc:
            raise NotFound(f"Track {trackId!r} does not exist.", code=exc.code) from None
        row = await in_thread(rt.ticket, ticket)
        return Response(TeamTracksJobAccepted(jobId=row.uuid), status_code=200, headers={"Location": f"/job/{row.uuid}"})

    @get(
        "/job/{jobId:str}",
        summary="The status of an import job",
        responses={
            200: ResponseSpec(TeamTracksJobStatus, description="Job status", generate_examples=False),
            **_errors(401, 404),
        },
    )
    async def job_status(self, request: Request[Any, Any, Any], tenant_row: TenantRow, jobId: str) -> Stream:  # noqa: N803
        """Counts while running; created object ids and row errors once finished."""
        try:
            job = str(uuidlib.UUID(jobId))
        except ValueError:
            raise NotFound(f"Job {jobId!r} does not exist.") from None
        try:
            _, view = await in_thread(service.find_ticket_by_uuid, runtime(request), tenant_row, job, DIALECT)
        except NotFound:
            raise NotFound(f"Job {jobId!r} does not exist.") from None
        return Stream(render_job(view, runtime(request).failures(view.ticket)), media_type="application/json")


ROUTES: list[Any] = [TeamTracksImports]
