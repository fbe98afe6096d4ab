"""Database engines: SQLite (WAL, immediate write transactions) or PostgreSQL (pre-ping), migrated to head."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import SingletonThreadPool

from events import migrations


def make_engine(url: str, *, pool_size: int = 10, upgrade: bool = True) -> sa.Engine:
    """Create an engine for `url` and (unless told not to) bring its schema to head."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        _tune_sqlite(engine, busy_ms=60_000)
    else:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10)
    if upgrade:
        migrations.upgrade(engine)  # every process runs it at start: replicas take turns, at head it is one read
    return engine


def _wal(cur: Any, attempts: int = 100) -> None:
    """Switch to WAL. Connections opening a new file at once race for it, and the loser gets
    "database is locked" at once (no busy wait for a journal-mode change): try again shortly."""
    for attempt in range(attempts):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01)


def loop_engine(engine: sa.Engine, busy_ms: int = 100) -> sa.Engine | None:
    """For a SQLite file, a second engine over it for short reads made on an event loop's thread:
    each thread has its own connection (so the loop never waits for a pooled one that worker
    threads hold) and a lock held longer than `busy_ms` is an error at once rather than a wait
    (a WAL reader meets one only in rare cases, such as the recovery after a crash). None for an
    in-memory SQLite database (a second engine would see another one) and for any other database."""
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    loop = sa.create_engine(
        engine.url, poolclass=SingletonThreadPool, connect_args={"check_same_thread": False, "timeout": busy_ms / 1000}
    )
    _tune_sqlite(loop, busy_ms=busy_ms)
    return loop


def _tune_sqlite(engine: sa.Engine, *, busy_ms: int) -> None:
    """WAL for concurrent readers; BEGIN IMMEDIATE for writers so they queue instead of deadlocking."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cur = dbapi_conn.cursor()
        _wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        begin = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        if begin == "BEGIN":
            # A deferred BEGIN takes no lock, so it cannot fail the way BEGIN IMMEDIATE can (whose
            # "database is locked" callers retry on as SQLAlchemy's error): straight to the driver,
            # which saves a third of an empty read transaction (54 -> 36 µs).
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(begin)


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
