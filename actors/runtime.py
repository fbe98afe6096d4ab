"""The runtime: settings, database, blobs, broker and actors wired together for one process."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import dramatiq
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from actors.blobs import BlobStore
from actors.broker import make_broker
from actors.net import AllowList
from app.settings import Settings
from events import catalog
from events.db import make_engine, read_tx
from events.flow import Step, next_step
from events.log import Conflict
from events.projections import FailureSource, ImportView
from events.views import ViewCache, failures_from_log

if TYPE_CHECKING:
    from actors.worker_process import WorkerProcess

log = logging.getLogger("importer.runtime")
T = TypeVar("T")


class Runtime:
    """Everything a step or a request handler needs, built once per process."""

    def __init__(self, settings: Settings, *, engine: sa.Engine | None = None, broker: dramatiq.Broker | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.resolved_database_url)
        self.blobs = BlobStore(settings.resolved_blob_dir)
        self.broker = broker or make_broker(settings)
        self.views = ViewCache()
        self.allow = AllowList.parse(settings.allowed_hosts)
        self.worker_process: WorkerProcess | None = None  # set when `serve` runs its worker as a child
        from actors.pipeline import declare_actors  # the steps import this module

        self.actors: dict[str, dramatiq.Actor[Any, Any]] = declare_actors(self)

    def view(self, ticket: int) -> ImportView | None:
        """The ticket's current view (None if there is no such ticket)."""
        if not 0 < ticket < 2**63:  # not an id the database can even hold (a fuzzed URL, say)
            return None
        with read_tx(self.engine) as conn:
            return self.views.load(conn, ticket)

    def failures(self, ticket: int) -> FailureSource:
        """Where the row failures of the ticket's (cached) view are read from: the log, per chunk."""
        return failures_from_log(self.engine, ticket)

    def ticket(self, ticket: int) -> catalog.TicketRow:
        """The ticket's row (it must exist)."""
        with read_tx(self.engine) as conn:
            row = catalog.get_ticket(conn, ticket)
        if row is None:
            raise LookupError(f"no ticket {ticket}")
        return row

    def send(self, ticket: int, step: Step) -> None:
        """Enqueue one step; the message carries ids only."""
        actor = self.actors[step.actor]
        if step.chunk is None:
            actor.send(ticket)
        else:
            actor.send(ticket, step.chunk)

    def drive(self, ticket: int) -> Step | None:
        """Enqueue whatever the log says the ticket needs next."""
        view = self.view(ticket)
        step = next_step(view) if view is not None else None
        if step is not None:
            self.send(ticket, step)
        return step

    def close(self) -> None:
        """Release the database pool."""
        self.engine.dispose()


def retry_conflicts(fn: Callable[[], T], attempts: int = 8) -> T:
    """Run a read-decide-write step again when another writer got to the log (or the lock) first."""
    for attempt in range(attempts):
        try:
            return fn()
        except (Conflict, IntegrityError) as exc:
            last: Exception = exc
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            last = exc
        time.sleep(min(0.5, 0.01 * (2**attempt)) * random.random())  # decorrelate racing writers
    raise last
