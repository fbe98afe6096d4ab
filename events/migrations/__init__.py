"""Schema migrations (alembic): `upgrade(engine)` brings a database to head at every start, at the
cost of one small read when it is there already; replicas that start together take turns.

The migrations live beside this module (env.py, versions/NNNN_what.py), so an installed package
carries them; alembic is configured here in code (no alembic.ini).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from events import locks

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("importer.migrations")

BASELINE = "0001"  # the schema every database had before alembic: one without alembic_version has it
VERSION_TABLE = "alembic_version"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer importer than this one."""


def location() -> Path:
    """The folder alembic reads (env.py, versions/), inside the installed package."""
    return Path(__file__).resolve().parent


def head() -> str:
    """The newest revision: versions/ holds NNNN_what.py files, each revising the one numbered before."""
    return max(p.name[:4] for p in (location() / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current(conn: sa.Connection) -> str | None:
    """The database's revision (None before alembic: no version table)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def at_head(engine: sa.Engine) -> bool:
    """Whether the database's schema is at head (one small read; alembic is not imported)."""
    with engine.connect() as conn:
        return current(conn) == head()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the schema to head; returns (revision found, revision now)."""
    target = head()
    with engine.connect() as conn:
        found = current(conn)
    if found == target:
        return found, target
    with _locked(engine) as conn:
        found = current(conn)  # whoever held the lock before us may have done it
        if found is not None and found > target:
            raise SchemaTooNew(f"the database schema is at revision {found}, newer than this importer's {target}: run the newer importer")
        if found != target:
            _migrate(conn, found, target)
    return found, target


def new_revision(engine: sa.Engine, message: str) -> Path:
    """Write versions/NNNN_message.py with the changes between the tables and a database at head."""
    from alembic import command  # optional heavy import, see _migrate

    upgrade(engine)
    with _locked(engine) as conn:
        script = command.revision(_config(conn), message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}")
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


@contextmanager
def _locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction that only one process at a time holds: an advisory lock on PostgreSQL, the
    write lock (BEGIN IMMEDIATE, see events.db) on SQLite. Both databases roll DDL back on error."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with conn.begin():
            locks.schema_change(conn)  # a no-op on SQLite, whose write lock BEGIN IMMEDIATE took
            yield conn


def _migrate(conn: sa.Connection, found: str | None, target: str) -> None:
    """Run the migrations from `found` to `target` on `conn` (in its transaction)."""
    # alembic is an optional heavy import (~11 MB): a process whose database is at head never loads it
    from alembic import command

    config = _config(conn)
    if found is None and sa.inspect(conn).has_table("tenants"):
        command.stamp(config, BASELINE)  # created by create_all before alembic: it has the baseline schema
        found = BASELINE
        log.info("schema: a database from before migrations, stamped %s", BASELINE)
    command.upgrade(config, target)
    log.info("schema: upgraded from %s to %s", found or "an empty database", target)


def _config(conn: sa.Connection) -> Config:
    """Alembic's configuration, built in code: our script folder and the caller's connection."""
    from alembic.config import Config  # optional heavy import, see _migrate

    config = Config()
    config.set_main_option("script_location", str(location()).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config
