"""PostgreSQL advisory locks, one named function per thing the processes take turns at.

Each lock is a 64-bit key: a class in the high bits, the id it guards in the low bits, so two
kinds of lock never collide. On SQLite these are no-ops: its one write lock (every write
transaction begins IMMEDIATE) already makes writers take turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

SCHEMA = 7319001  # "the schema is being created or upgraded"
_SUBMISSIONS = 0x1A7E << 32  # "submissions of tenant N" (the rate limit's count)
_DATASET_WRITES = 0x0D5E << 32  # "a chunk is deciding and writing records of dataset N"
_WEBHOOK = 0x7EB0 << 48  # "delivering the callback of ticket N"


def _postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _xact_lock(conn: sa.Connection, key: int) -> None:
    """Wait for the lock; the transaction's end releases it."""
    if _postgres(conn):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(CAST(:k AS bigint))"), {"k": key})


def _try_xact_lock(conn: sa.Connection, key: int) -> bool:
    """Take the lock only if it is free now (SQLite: the write transaction already holds its one lock)."""
    if not _postgres(conn):
        return True
    return bool(conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(CAST(:k AS bigint))"), {"k": key}).scalar())


def schema_change(conn: sa.Connection) -> None:
    """Take turns at creating or upgrading the schema (replicas that start together)."""
    _xact_lock(conn, SCHEMA)


def tenant_submissions(conn: sa.Connection, tenant_id: int) -> None:
    """Take turns at counting and inserting one tenant's submissions."""
    _xact_lock(conn, _SUBMISSIONS | (tenant_id & 0xFFFFFFFF))


def dataset_writes(conn: sa.Connection, dataset_id: int) -> None:
    """Take turns at reading a dataset's current records, deciding outcomes and writing them.

    Without it two imports of the same keys on PostgreSQL both read "absent" and both report the
    row created (READ COMMITTED lets the second writer's upsert turn into an update unseen), and an
    update merged over a stale read loses the other writer's fields.
    """
    _xact_lock(conn, _dataset_key(dataset_id))


def try_dataset_writes(conn: sa.Connection, dataset_id: int) -> bool:
    """Take the dataset's write turn (as dataset_writes) only if no one holds it now; False:
    someone is writing, come back later."""
    return _try_xact_lock(conn, _dataset_key(dataset_id))


def _dataset_key(dataset_id: int) -> int:
    """The lock of "a chunk is deciding and writing records of dataset N"."""
    return _DATASET_WRITES | (dataset_id & 0xFFFFFFFF)


@contextmanager
def webhook_delivery(engine: sa.Engine, ticket: int) -> Iterator[bool]:
    """Try to claim the delivery of a ticket's callback across workers: yields whether we hold it.

    A session lock, held on its own connection for as long as the POST takes.
    """
    with engine.connect() as conn:
        key = {"k": _WEBHOOK | ticket}
        mine = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(CAST(:k AS bigint))"), key).scalar())
        try:
            yield mine
        finally:
            if mine:
                conn.execute(sa.text("SELECT pg_advisory_unlock(CAST(:k AS bigint))"), key)
            conn.commit()
