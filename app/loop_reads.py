"""Short reads on the event loop's own thread when the database is a local SQLite file.

A status poll's read is about 0.25 ms of Python that holds the GIL whichever thread runs it. Handing
it to a worker thread buys no parallelism (SQLite answers from the page cache; a WAL reader waits for
no writer) and cost the process about 0.2 ms more CPU per poll in futures, wake-ups and GIL
hand-offs, a quarter of a poll's cost then (docs/performance.md). A database across a network makes
a read wait, so there the read goes to a worker thread as every other one does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from litestar import Request
from sqlalchemy.exc import OperationalError

from app.concurrency import in_thread
from events.db import loop_engine, read_tx

T = TypeVar("T")


def _read(engine: sa.Engine, fn: Callable[[sa.Connection], T]) -> T:
    with read_tx(engine) as conn:
        return fn(conn)


class LoopReads:
    """Runs a short read, `fn(conn)` in a read transaction: here on SQLite, else in a worker thread."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.inline = loop_engine(engine)

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """fn's result; what it raises propagates (it may run twice: reads only)."""
        if self.inline is not None:
            try:
                return _read(self.inline, fn)
            except OperationalError as exc:
                if "locked" not in str(exc).lower():
                    raise
                # A lock held past the loop's short wait: wait for it in a thread, like any read.
        return await in_thread(_read, self.engine, fn)

    def close(self) -> None:
        """Close the loop's own connection."""
        if self.inline is not None:
            self.inline.dispose()


def loop_reads(request: Request[Any, Any, Any]) -> LoopReads:
    """The process's LoopReads, stored on the app at start-up."""
    reads = request.app.state.loop_reads
    assert isinstance(reads, LoopReads)
    return reads
