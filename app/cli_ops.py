"""Operator commands: events (show, export, import), replay, imports list, webhooks, ops token."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from actors.settings import load_settings


class _TicketOrCommand(TyperGroup):
    """`importer events 42` means `importer events show 42`; `export` and `import` stay sub-commands."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


events_cli = typer.Typer(cls=_TicketOrCommand, help="A ticket's event log; export and import the whole log.", no_args_is_help=True)
imports_cli = typer.Typer(help="Import history.", no_args_is_help=True)
webhooks_cli = typer.Typer(help="Completion callbacks: failures and redelivery.", no_args_is_help=True)
ops_cli = typer.Typer(help="Operator access.", no_args_is_help=True)


def _engine() -> Any:
    from events.db import make_engine

    return make_engine(load_settings().resolved_database_url, pool_size=2)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def parse_since(text: str) -> datetime:
    """An ISO 8601 date/time (UTC when no zone is given) or an age such as 90m, 12h, 7d."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither an ISO 8601 time nor an age like 12h or 7d") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@events_cli.command("show")
def show(
    ticket: int,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new events until the import ends.")] = False,
    table: Annotated[bool, typer.Option("--table", help="A readable table instead of NDJSON.")] = False,
) -> None:
    """Print a ticket's event log as NDJSON (or a table); with --follow, until the terminal event."""
    from app.ops import stored_json
    from app.ops_listings import describe, event_table
    from events import catalog_models
    from events import log as event_log
    from events.db import read_tx
    from events.types import TERMINAL_TYPES, event_type

    engine = _engine()
    with read_tx(engine) as conn:
        if catalog_models.ticket(conn, ticket) is None:
            raise _fail(f"no ticket {ticket}")
    seq, first = 0, True
    while True:
        with read_tx(engine) as conn:
            stored = event_log.read(conn, ticket, after=seq)
        if table and stored:
            event_table([(s.seq, s.event, describe(s.event)) for s in stored], header=first)
            first = False
        for s in stored:
            if not table:
                typer.echo(json.dumps({"ticket": ticket, **stored_json(s)}))
            seq = s.seq
        if not follow or any(event_type(s.event) in TERMINAL_TYPES for s in stored):
            break
        time.sleep(0.5)


@events_cli.command("export")
def export(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    since: Annotated[str | None, typer.Option(help="Only tickets created since: ISO 8601 or an age (12h, 7d).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the log as NDJSON (format importer-log v1; holds hashed credentials and webhook secrets)."""
    from events.db import read_tx
    from events.export import LogFileError, export_log

    engine = _engine()
    out = output.open("wb") if output else sys.stdout.buffer
    try:
        with read_tx(engine) as conn:
            end = export_log(conn, out.write, tenant=tenant, since=parse_since(since) if since else None)
    except LogFileError as exc:
        raise _fail(str(exc)) from None
    finally:
        if output:
            out.close()
        else:
            out.flush()
    typer.echo(json.dumps({"exported": {k: getattr(end, k) for k in end.__struct_fields__}}), err=True)


@events_cli.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="An export (importer-log NDJSON); '-' reads stdin.", allow_dash=True)],
    merge: Annotated[bool, typer.Option("--merge", help="Into a non-empty database: skip ids that exist.")] = False,
) -> None:
    """Load an exported log into this database (refuses a non-empty one unless --merge)."""
    from events.db import write_tx
    from events.export import LogFileError, import_log

    engine = _engine()
    try:
        with (sys.stdin.buffer if str(path) == "-" else path.open("rb")) as fh, write_tx(engine) as conn:
            added = import_log(conn, fh, merge=merge)
    except (LogFileError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps({"imported": added}))


def replay(
    ticket: Annotated[int | None, typer.Argument(help="The ticket to replay.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Re-fold every ticket and compare with what is served.")] = False,
    url: Annotated[str | None, typer.Option(envvar="IMPORTER_URL", help="With --verify: compare with this running service.")] = None,
    token: Annotated[str | None, typer.Option(envvar="IMPORTER_OPS_TOKEN", help="Operator token for --url.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="NDJSON instead of a table.")] = False,
) -> None:
    """Fold a ticket's log event by event and print the timeline; --verify checks every ticket (exit 1 on a difference)."""
    from app.ops_listings import served_by_service, timeline, timeline_table, verify_views
    from events import log as event_log
    from events.db import read_tx

    engine = _engine()
    if verify:
        served = served_by_service(url, token) if url else None
        if url and not token:
            raise _fail("--url needs --token (or IMPORTER_OPS_TOKEN): run `importer ops token`", 2)
        checked, diffs = verify_views(engine, served)
        for bad, fields in diffs:
            typer.echo(json.dumps({"ticket": bad, "differs": fields}))
        typer.echo(json.dumps({"verified": checked, "different": len(diffs)}), err=True)
        raise typer.Exit(1 if diffs else 0)
    if ticket is None:
        raise _fail("give a TICKET, or --verify", 2)
    with read_tx(engine) as conn:
        stored = event_log.read(conn, ticket)
    if not stored:
        raise _fail(f"no events for ticket {ticket}")
    steps = timeline(ticket, stored)
    if as_json:
        for step in steps:
            typer.echo(json.dumps(step))
    else:
        timeline_table(ticket, steps)


@imports_cli.command("list")
def imports_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    state: Annotated[str | None, typer.Option(help="accepted|processing|completed|failed|canceled")] = None,
    since: Annotated[str | None, typer.Option(help="Created since: ISO 8601 or an age (12h, 7d).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="NDJSON instead of a table.")] = False,
) -> None:
    """Import history, newest first, with counts and timings."""
    from app.ops_listings import history, history_table

    rows = list(history(_engine(), tenant=tenant, state=state, since=parse_since(since) if since else None, limit=limit))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        history_table(rows)


@webhooks_cli.command("list-failed")
def webhooks_list_failed(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="NDJSON instead of a table.")] = False,
) -> None:
    """Callbacks not delivered: abandoned after the last retry, or failing and still retrying."""
    from app.ops_listings import failed_webhooks, webhooks_table

    rows = list(failed_webhooks(_engine(), tenant=tenant))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        webhooks_table(rows)


@webhooks_cli.command("redeliver")
def webhooks_redeliver(ticket: int) -> None:
    """Send a ticket's callback again (same webhook-id), on the documented retry schedule."""
    from app.errors import ApiError
    from app.ops import request_redelivery
    from app.wiring import make_runtime

    rt = make_runtime(load_settings())
    try:
        view = request_redelivery(rt, ticket, by="ops-cli")
        if rt.settings.embedded:
            view = _deliver_here(rt, ticket, view.seq)
    except ApiError as exc:
        raise _fail(exc.message) from None
    finally:
        rt.close()
    wh = view.webhook
    outcome = "delivered" if wh.delivered_at else ("abandoned" if wh.abandoned else "pending")
    typer.echo(json.dumps({"ticket": ticket, "webhook_id": wh.webhook_id, "attempts": wh.attempts, "outcome": outcome}))


def _deliver_here(rt: Any, ticket: int, after: int) -> Any:
    """Embedded mode has no shared queue: make the first attempt in this process."""
    import dramatiq

    worker = dramatiq.Worker(rt.broker, worker_threads=1)
    worker.start()
    deadline = time.monotonic() + rt.settings.webhook_timeout + 30
    try:
        while time.monotonic() < deadline:
            view = rt.view(ticket)
            if view.seq > after and view.webhook.round_attempts:
                if not (view.webhook.delivered_at or view.webhook.abandoned):
                    typer.echo("the attempt failed; `importer serve` retries it, or use POST /ops/imports/{id}/webhook/redeliver", err=True)
                return view
            time.sleep(0.1)
        raise _fail("no delivery attempt was recorded in time")
    finally:
        worker.stop(timeout=5_000)


def ops_token() -> None:
    """Create or rotate the operator token for /ops endpoints (shown once; stored hashed)."""
    from app.ops import issue_operator_token
    from events.db import write_tx

    with write_tx(_engine()) as conn:
        token = issue_operator_token(conn)
    typer.echo("operator token (store it now; the previous one no longer works):", err=True)
    typer.echo(token)


ops_cli.command("token")(ops_token)


def rotate_webhook_secret(name: str) -> None:
    """Replace a tenant's webhook signing secret and print the new one (callers must update theirs)."""
    from app.tenants import rotate_webhook_secret as rotate
    from events.catalog import tenant_by_name
    from events.db import write_tx

    with write_tx(_engine()) as conn:
        row = tenant_by_name(conn, name)
        if row is None:
            raise _fail(f"no tenant named {name!r}")
        secret = rotate(conn, row.id)
    typer.echo(secret)
