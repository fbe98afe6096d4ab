"""The runtime: settings, database, blobs, broker and actors wired together for one process."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dramatiq
import sqlalchemy as sa

from actors.blobs import Blobs, S3Options, open_blobs
from actors.broker import make_broker
from actors.check_ahead import CheckAhead
from actors.net import AllowList
from actors.pipeline import declare_actors
from actors.settings import Settings
from events import catalog
from events.db import make_engine, read_tx
from events.flow import Step, steps
from events.projections import FailureSource, ImportView
from events.view_cache import ViewCache, failures_from_log

if TYPE_CHECKING:
    from actors.worker_process import WorkerProcess

log = logging.getLogger("importer.runtime")

WebhookRenderer = Callable[[ImportView, catalog.TicketRow, str], bytes]
"""A ticket's final status as its dialect's callback body: passed down by the app that wires the runtime."""


class Runtime:
    """Everything a step or a request handler needs, built once per process."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: sa.Engine | None = None,
        broker: dramatiq.Broker | None = None,
        render_webhook: WebhookRenderer | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.resolved_database_url)
        self.blobs: Blobs = open_blobs(settings.blob_url, settings.resolved_blob_dir, Path(settings.data_dir) / "tmp", S3Options(
            endpoint=settings.s3_endpoint, access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key, session_token=settings.s3_session_token,
            region=settings.s3_region, part_bytes=settings.blob_part_bytes, timeout=settings.blob_timeout,
            attempts=settings.blob_attempts,
        ))
        self.broker = broker or make_broker(settings)
        self.views = ViewCache()
        self.allow = AllowList.parse(settings.allowed_hosts)
        self.worker_process: WorkerProcess | None = None  # set when `serve` runs its worker as a child
        self.render_webhook = render_webhook
        # Scaled: the next chunk may go to another worker process, so finished checks are stored.
        # One core: the child would only take turns with the worker, so it is not started.
        wanted = not settings.embedded if settings.check_ahead is None else settings.check_ahead
        ahead = wanted and (os.cpu_count() or 1) > 1
        self.check_ahead = CheckAhead(ahead, share=None if settings.embedded else self.blobs)
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
        """Enqueue whatever the log says the ticket needs next (every due chunk when its chunks are
        applied side by side); returns the first step sent."""
        view = self.view(ticket)
        owed = steps(view) if view is not None else []
        for step in owed:
            self.send(ticket, step)
        return owed[0] if owed else None

    def close(self) -> None:
        """Release the database pool and the check-ahead child."""
        self.check_ahead.close()
        self.engine.dispose()
