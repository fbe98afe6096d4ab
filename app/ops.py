"""Operator endpoints and actions: health, readiness, metrics, event logs, webhook redelivery, credential rotation."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from actors.retry import retry_conflicts
from actors.runtime import Runtime
from app.auth import bearer_token, by_token, runtime
from app.errors import BadRequest, Conflict, NotFound, Unauthorized
from app.native_bodies import ERROR_RESPONSES
from app.sse import last_event_id, live_events
from app.tenants import hash_secret, new_webhook_secret, rotate_credentials
from events import catalog, catalog_models
from events import log as event_log
from events.catalog import TenantRow
from events.db import read_tx, write_tx
from events.log import now
from events.projections import ImportView
from events.tables import credentials, tenants
from events.types import WebhookRedeliveryRequested

OPS_TENANT = "__ops__"  # reserved tenant holding the operator credential (tenant_id is NOT NULL)
OPS_DIALECT = "ops"


def issue_operator_token(conn: sa.Connection) -> str:
    """Create or rotate the operator token (stored hashed); returns it, the only time it is shown."""
    ops = catalog.tenant_by_name(conn, OPS_TENANT)
    if ops is None:
        inserted = conn.execute(
            tenants.insert().values(name=OPS_TENANT, webhook_secret=new_webhook_secret(), created_at=now())
        ).inserted_primary_key
        assert inserted is not None
        tenant_id = int(inserted[0])
    else:
        tenant_id = ops.id
    conn.execute(credentials.delete().where(credentials.c.dialect == OPS_DIALECT))
    token = f"ops_{secrets.token_urlsafe(32)}"
    conn.execute(
        credentials.insert().values(tenant_id=tenant_id, dialect=OPS_DIALECT, ident=None, secret_hash=hash_secret(token))
    )
    return token


def operator(request: Request[Any, Any, Any]) -> TenantRow:
    """Operator auth: `Authorization: Bearer <token from importer ops token>`."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing operator credentials: send 'Authorization: Bearer <operator token>'")
    found = by_token(runtime(request), OPS_DIALECT, token)
    if found is None or found.name != OPS_TENANT:
        raise Unauthorized("invalid operator token")
    return found


def request_redelivery(rt: Runtime, ticket: int, by: str = "operator") -> ImportView:
    """Append WebhookRedeliveryRequested and enqueue the delivery (same webhook id as before)."""

    def attempt() -> ImportView:
        view = rt.view(ticket)
        if view is None:
            raise NotFound(f"import {ticket} does not exist", code="unknown_import")
        if view.spec is None or not view.spec.callback_url:
            raise Conflict(f"import {ticket} has no callback URL", code="no_callback")
        if not view.terminal:
            raise Conflict(f"import {ticket} is still {view.state}; its callback is sent when it ends", code="not_finished")
        wh = view.webhook
        if wh.delivered_at is None and not wh.abandoned:
            raise Conflict(f"import {ticket}: a delivery is still in progress (attempt {wh.attempts})", code="delivery_pending")
        with write_tx(rt.engine) as conn:
            event_log.append(conn, ticket, view.seq, [WebhookRedeliveryRequested(at=now(), by=by)])
        return view

    retry_conflicts(attempt)
    rt.drive(ticket)
    view = rt.view(ticket)
    assert view is not None
    return view


def stored_json(stored: event_log.StoredEvent) -> dict[str, Any]:
    """One logged event as JSON: its seq, then the event's own fields."""
    return {"seq": stored.seq, **msgspec.to_builtins(stored.event)}


@get("/health", sync_to_thread=False, tags=["ops"], summary="The process is up")
def health() -> dict[str, str]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}


@get("/ready", sync_to_thread=True, tags=["ops"], summary="Database, broker and blob store are reachable")
def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Readiness: the database and the blob store answer and, when scaled, Redis too."""
    rt = runtime(request)
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if rt.settings.redis_url:
        try:
            client = getattr(rt.broker, "client", None)
            if client is not None:
                client.ping()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
    elif rt.worker_process is not None and not rt.worker_process.alive:
        checks["broker"] = "error: the worker process is not running (it is restarted automatically)"
    else:
        checks["broker"] = "in-process"
    problem = rt.blobs.check()  # object storage: the bucket must exist and answer
    checks["blobs"] = "ok" if problem is None else f"error: {problem}"
    ok = all(v in ("ok", "in-process") for v in checks.values())
    return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@get("/metrics", sync_to_thread=True, tags=["ops"], summary="Prometheus metrics", media_type="text/plain")
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format: this process's timings plus counts read from the log at scrape time."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from app.metrics import render

    return Response(render(runtime(request)), media_type=CONTENT_TYPE_LATEST)


def _ticket_row(rt: Runtime, ticket: int) -> catalog_models.Ticket:
    with read_tx(rt.engine) as conn:
        row = catalog_models.ticket(conn, ticket)
    if row is None:
        raise NotFound(f"import {ticket} does not exist", code="unknown_import")
    return row


class OpsImports(Controller):
    """Any tenant's import, for operators: its log (JSON or a live SSE stream), its view, redelivery."""

    path = "/ops/imports"
    tags = ["ops"]
    dependencies = {"operator": Provide(operator, sync_to_thread=True)}

    @get("/{ticket:int}/events", sync_to_thread=True, summary="The ticket's log (SSE with Accept: text/event-stream)")
    def events(self, request: Request[Any, Any, Any], operator: TenantRow, ticket: int) -> Any:
        rt = runtime(request)
        row = _ticket_row(rt, ticket)
        after = last_event_id(request)
        if "text/event-stream" in request.headers.get("accept", ""):
            return live_events(rt, ticket, request)
        with read_tx(rt.engine) as conn:
            stored = event_log.read(conn, ticket, after=after)
            tenant = catalog_models.tenant(conn, row.tenant_id)
        return {
            "ticket": ticket,
            "tenant": tenant.name if tenant else None,
            "dialect": row.dialect,
            "events": [stored_json(s) for s in stored],
        }

    @get("/{ticket:int}/view", sync_to_thread=True, summary="The folded view this process serves")
    def view(self, request: Request[Any, Any, Any], operator: TenantRow, ticket: int) -> dict[str, Any]:
        view = runtime(request).view(ticket)
        if view is None:
            raise NotFound(f"import {ticket} does not exist", code="unknown_import")
        return {"ticket": ticket, "seq": view.seq, "view": msgspec.to_builtins(view)}

    @post("/{ticket:int}/webhook/redeliver", status_code=202, sync_to_thread=True, summary="Send the callback again")
    def redeliver(self, request: Request[Any, Any, Any], operator: TenantRow, ticket: int) -> dict[str, Any]:
        view = request_redelivery(runtime(request), ticket, by="ops-api")
        return {"ticket": ticket, "seq": view.seq, "webhook": msgspec.to_builtins(view.webhook)}


class OpsTenants(Controller):
    """Tenants' credentials, for operators: rotation."""

    path = "/ops/tenants"
    tags = ["ops"]
    dependencies = {"operator": Provide(operator, sync_to_thread=True)}

    @post(
        "/{name:str}/credentials/{dialect:str}/rotate", status_code=200, sync_to_thread=True,
        summary="New credentials for one dialect (shown once); the old ones stop now or after ?grace= seconds",
        responses=ERROR_RESPONSES,
    )
    def rotate(
        self, request: Request[Any, Any, Any], operator: TenantRow, name: str, dialect: str,
        grace: float = Parameter(default=0, ge=0, description="Seconds the old credentials keep working"),
    ) -> dict[str, Any]:
        try:
            with write_tx(runtime(request).engine) as conn:
                return rotate_credentials(conn, name, dialect, grace)
        except LookupError as exc:
            raise NotFound(str(exc), code="unknown_tenant") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None


OPS_HANDLERS: list[type[Controller] | HTTPRouteHandler] = [health, ready, metrics, OpsImports, OpsTenants]
