"""The `importer` command line: serve, worker, tenants, datasets, submit, revert, events, resume, db."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from actors.settings import load_settings
from app.cli_db import db_cli, upgrade_in_a_process
from app.cli_ops import (
    events_cli,
    imports_cli,
    ops_cli,
    replay,
    rotate_webhook_secret,
    webhooks_cli,
)

cli = typer.Typer(help="Asynchronous bulk file imports.", no_args_is_help=True, add_completion=False)
tenants_cli = typer.Typer(help="Tenants and their credentials.", no_args_is_help=True)
datasets_cli = typer.Typer(help="Datasets (typed fields and a key).", no_args_is_help=True)
cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(datasets_cli, name="datasets")
cli.add_typer(events_cli, name="events")
cli.add_typer(imports_cli, name="imports")
cli.add_typer(webhooks_cli, name="webhooks")
cli.add_typer(ops_cli, name="ops")
cli.add_typer(db_cli, name="db")
cli.command()(replay)
tenants_cli.command("rotate-webhook-secret")(rotate_webhook_secret)


def _runtime() -> Any:
    from app.wiring import make_runtime

    return make_runtime(load_settings())


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (scaled mode only).")] = 1,
) -> None:
    """Run the HTTP API; without IMPORTER_REDIS_URL it also runs the worker, in a child process
    (IMPORTER_EMBEDDED_WORKER=thread: in this one)."""
    import uvicorn

    from actors.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_format, settings.log_level)
    if settings.embedded and workers > 1:
        raise typer.BadParameter("several HTTP workers need IMPORTER_REDIS_URL (the embedded worker is per process)")
    upgrade_in_a_process(settings.resolved_database_url)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if sys.platform != "win32" else "auto",
        http="app.http_guard:GuardedHttpToolsProtocol",  # httptools with head size and head/body time limits
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@cli.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(help="Threads per process.")] = 0,
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus metrics on this port (0: off).")] = 0,
) -> None:
    """Run dramatiq workers on Redis (IMPORTER_REDIS_URL must be set)."""
    from actors.worker import run_workers
    from app.wiring import make_runtime

    settings = load_settings()
    if not settings.redis_url:
        raise typer.BadParameter("`importer worker` needs IMPORTER_REDIS_URL; `importer serve` runs the embedded worker")
    upgrade_in_a_process(settings.resolved_database_url)
    if metrics_port:
        from app.metrics import serve_worker_metrics

        serve_worker_metrics(metrics_port, processes)
    run_workers(settings, processes, threads or settings.worker_threads, make_runtime)


@cli.command()
def resume() -> None:
    """Re-drive every ticket the log shows unfinished (also done at every start)."""
    from actors.resume import resume as do_resume

    rt = _runtime()
    driven = do_resume(rt)
    if rt.settings.embedded and driven:
        from actors.worker import EmbeddedWorker

        typer.echo(f"re-driving {len(driven)} ticket(s) in this process until they finish...")
        w = EmbeddedWorker(rt)
        w.worker.start()
        rt.broker.join("importer")
        w.worker.stop()
    typer.echo(json.dumps({"resumed": driven}))


@tenants_cli.command("create")
def tenants_create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as one JSON object.")] = False,
) -> None:
    """Create a tenant and print its credentials for every dialect (shown only once)."""
    from app.tenants import create_tenant
    from events.db import write_tx

    rt = _runtime()
    try:
        with write_tx(rt.engine) as conn:
            creds = create_tenant(conn, name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _show_credentials(creds, as_json, f"tenant {name}: credentials (store them now; they are not shown again)")


@tenants_cli.command("rotate")
def tenants_rotate(
    name: str,
    dialect: Annotated[str, typer.Option("--dialect", help="native | yesmail | thalamus | teamtracks | admin")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the new credentials as one JSON object.")] = False,
    grace: Annotated[float, typer.Option("--grace", min=0, help="Seconds the old credentials keep working (0: they stop now).")] = 0,
) -> None:
    """Issue new credentials for one dialect of a tenant (shown only once); identifiers stay."""
    from app.tenants import rotate_credentials
    from events.db import write_tx

    rt = _runtime()
    try:
        with write_tx(rt.engine) as conn:
            creds = rotate_credentials(conn, name, dialect, grace)
    except (LookupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    until = creds["previous_valid_until"]
    note = f"the previous ones work until {until}" if until else "the previous ones no longer work"
    _show_credentials(creds, as_json, f"tenant {name}: new {dialect} credentials (store them now; {note})")


def _show_credentials(creds: dict[str, Any], as_json: bool, title: str) -> None:
    """Credentials as one JSON object, or a table of one row per dialect."""
    if as_json:
        typer.echo(json.dumps(creds))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("dialect")
    table.add_column("credential")
    for dialect, value in creds.items():
        if isinstance(value, dict):
            table.add_row(dialect, "  ".join(f"{k}={v}" for k, v in value.items()))
        elif dialect not in ("tenant", "previous_valid_until"):
            table.add_row(dialect, str(value))
    Console().print(table)


@datasets_cli.command("create")
def datasets_create(
    name: str,
    tenant: Annotated[str, typer.Option(help="Tenant name.")],
    schema: Annotated[Path, typer.Option(help="Schema JSON file.", exists=True, dir_okay=False)],
) -> None:
    """Create or redefine a tenant's dataset from a schema file."""
    from app.names import identifier_problem
    from events.catalog import put_dataset, tenant_by_name
    from events.datasets import SchemaError, parse_schema
    from events.db import write_tx
    from events.log import now

    if (problem := identifier_problem(name)) is not None:
        typer.echo(f"error: dataset {problem}", err=True)
        raise typer.Exit(1)
    rt = _runtime()
    try:
        parsed = parse_schema(schema.read_bytes())
    except SchemaError as exc:
        typer.echo(f"error: {schema}: {exc}", err=True)
        raise typer.Exit(1) from None
    with write_tx(rt.engine) as conn:
        row = tenant_by_name(conn, tenant)
        if row is None:
            typer.echo(f"error: no tenant named {tenant!r}", err=True)
            raise typer.Exit(1)
        _, created = put_dataset(conn, row.id, name, parsed, now())
    typer.echo(f"dataset {name} {'created' if created else 'updated'} for tenant {tenant}")


@cli.command()
def submit(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX or XLS file.", exists=True, dir_okay=False)],
    dataset: Annotated[str, typer.Option(help="Target dataset.")],
    url: Annotated[str, typer.Option(envvar="IMPORTER_URL", help="Service URL.")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="IMPORTER_TOKEN", help="Native API token.")] = None,
    mode: Annotated[str, typer.Option(help="insert|update|replace|ignore")] = "update",
    policy: Annotated[str, typer.Option(help="atomic|partial")] = "partial",
    threshold: Annotated[str | None, typer.Option(help="Failed rows tolerated: N or N%.")] = None,
    headers: Annotated[bool, typer.Option(help="The first row is a header.")] = True,
    separator: Annotated[str | None, typer.Option(help=", tab | ;  (default: sniffed)")] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding: latin-1, cp1252, utf-16… (default: UTF-8, or the BOM's)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Poll with a progress bar until the import ends.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Run every step and report every row, but write no record.")] = False,
) -> None:
    """Upload a file through the native API; with --wait, follow it to the end (exit 1 if it failed)."""
    from app.client import submit_file

    if not token:
        typer.echo("error: pass --token or set IMPORTER_TOKEN", err=True)
        raise typer.Exit(2)
    code = submit_file(
        url, token, file, dataset=dataset, mode=mode, policy=policy, threshold=threshold,
        headers=headers, separator=separator, wait=wait, dry_run=dry_run, encoding=encoding,
    )
    raise typer.Exit(code)


@cli.command()
def revert(
    ticket: Annotated[int, typer.Argument(help="The import to undo.")],
    url: Annotated[str, typer.Option(envvar="IMPORTER_URL", help="Service URL.")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="IMPORTER_TOKEN", help="Native API token.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also undo records a later import changed since.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the revert is done and print its counts.")] = False,
) -> None:
    """Undo a completed import: delete the records it created, put back the ones it changed (exit 2 if refused)."""
    from app.client import revert_import

    if not token:
        typer.echo("error: pass --token or set IMPORTER_TOKEN", err=True)
        raise typer.Exit(2)
    raise typer.Exit(revert_import(url, token, ticket, force=force, wait=wait))


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()


if __name__ == "__main__":
    main()
