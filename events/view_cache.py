"""Loading views: fold the log, reusing a cached view and reading only newer events."""

from __future__ import annotations

import threading
from collections import OrderedDict

import sqlalchemy as sa

from events import log
from events.projections import ImportView, fold_stored


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
        newer = log.read(conn, ticket, after=base.seq)
        if not newer:
            return cached
        view = fold_stored(newer, base)
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
