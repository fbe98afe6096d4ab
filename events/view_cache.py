"""Loading views: fold the log, reusing a cached view and reading only newer events.

Cached views leave row failures in the log (an import whose 2M rows all failed would otherwise keep
2M messages in every API process); renderers page them with failures_from_log when asked."""

from __future__ import annotations

import threading
from collections import OrderedDict

import sqlalchemy as sa

from events import log
from events.db import read_tx
from events.projections import FailureSource, ImportView, fold_stored, without_failures
from events.types import RowFailure


class ViewCache:
    """Per-process cache of folded views, invalidated by seq (the log only grows)."""

    def __init__(self, size: int = 2048) -> None:
        self._views: OrderedDict[int, ImportView] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def load(self, conn: sa.Connection, ticket: int) -> ImportView | None:
        """The ticket's current view, or None if it has no events."""
        with self._lock:
            cached = self._views.get(ticket)
        base = cached if cached is not None else ImportView(ticket=ticket)
        newer = log.read(conn, ticket, after=base.seq, failures=False)
        if not newer:
            return cached
        view = without_failures(fold_stored(newer, base))
        with self._lock:
            current = self._views.get(ticket)
            if current is None or current.seq < view.seq:
                self._views[ticket] = view
                self._views.move_to_end(ticket)
                while len(self._views) > self._size:
                    self._views.popitem(last=False)
        return view

    def clear(self) -> None:
        """Forget every cached view (after an import of a log, say)."""
        with self._lock:
            self._views.clear()


def failures_from_log(engine: sa.Engine, ticket: int) -> FailureSource:
    """Where a cached view's row failures are: each chunk's, read from the log when asked for."""

    def load(chunk: int) -> tuple[RowFailure, ...]:
        with read_tx(engine) as conn:
            return log.chunk_failures(conn, ticket, chunk)

    return load
