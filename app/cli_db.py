"""Schema commands: `importer db upgrade` (also run by every serve/worker start) and `db revision`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated

import typer

from actors.settings import load_settings
from events import migrations
from events.db import make_engine

db_cli = typer.Typer(help="The database schema: migrations.", no_args_is_help=True)


@db_cli.command("upgrade")
def upgrade() -> None:
    """Bring the database's schema to the newest migration (a database from before migrations is adopted)."""
    engine = make_engine(load_settings().resolved_database_url, pool_size=2, upgrade=False)
    try:
        found, now = migrations.upgrade(engine)
    except migrations.SchemaTooNew as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(json.dumps({"from": found, "to": now, "changed": found != now}))


def upgrade_in_a_process(database_url: str) -> None:
    """Before serve or worker: run `importer db upgrade` in a short-lived process when the schema is
    behind head, so that the long-lived process finds it at head and never loads alembic (~10 MB it
    would keep until it stops). At head this is one small read."""
    engine = make_engine(database_url, pool_size=1, upgrade=False)
    try:
        if migrations.at_head(engine):
            return
    finally:
        engine.dispose()
    env = {**os.environ, "IMPORTER_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, check=False)
    if done.returncode != 0:
        raise typer.Exit(done.returncode)


@db_cli.command("revision")
def revision(message: Annotated[str, typer.Argument(help="What the migration changes, in a few words.")]) -> None:
    """For developers: write the next migration from the difference between events/tables.py and the database."""
    engine = make_engine(load_settings().resolved_database_url, pool_size=2, upgrade=False)
    try:
        path = migrations.new_revision(engine, message)
    finally:
        engine.dispose()
    typer.echo(f"wrote {path}: read it, adjust it, and test the upgrade of a database with data")
