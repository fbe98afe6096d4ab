"""Database engines: SQLite (WAL, immediate write transactions) or PostgreSQL (pre-ping)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from events import locks
from events.tables import metadata


def make_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    """Create an engine for `url` and make sure the schema exists."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        _tune_sqlite(engine)
    else:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10)
        with engine.begin() as conn:  # several processes may start on a new database at once
            locks.schema_change(conn)
            metadata.create_all(conn)
            _add_new_columns(conn)
        return engine
    with engine.begin() as conn:
        metadata.create_all(conn)
        _add_new_columns(conn)
    return engine


def _add_new_columns(conn: sa.Connection) -> None:
    """Nullable columns added since the database was created (create_all adds only whole tables)."""
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"))


def _tune_sqlite(engine: sa.Engine) -> None:
    """WAL for concurrent readers; BEGIN IMMEDIATE for writers so they queue instead of deadlocking."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def is_sqlite(engine: sa.Engine | sa.Connection) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def write_tx(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction: committed on success, rolled back on any error."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only transaction (a consistent snapshot on both databases)."""
    with engine.connect() as conn, conn.begin():
        yield conn
