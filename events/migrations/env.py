"""Alembic's environment: migrate the connection events.migrations hands over, against the schema's metadata."""

from __future__ import annotations

from alembic import context

from events.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise SystemExit("run migrations through `importer db upgrade`: it opens the database and takes the lock")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite changes a table by copying it
    compare_type=True,
)
with context.begin_transaction():  # a no-op: the caller's transaction (and lock) holds the whole upgrade
    context.run_migrations()
