"""The actors: each pipeline step wrapped with the same retry and give-up rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from actors import apply_chunk, deliver_webhook, download, finalize, parse_file, revert_chunk
from actors.blobs import BlobUnavailable
from actors.broker import QUEUE
from actors.errors import StepFailed
from actors.logs import ticket_context
from actors.metrics import step_timer
from actors.retry import retry_conflicts
from events import log as event_log
from events import records
from events.db import write_tx
from events.flow import APPLY, DOWNLOAD, FINALIZE, PARSE, REVERT, WEBHOOK
from events.log import now
from events.types import Event, ImportFailed, RevertFailed, RolledBack, WebhookAbandoned

if TYPE_CHECKING:
    from actors.runtime import Runtime

logger = logging.getLogger("importer.pipeline")

StepFn = Callable[["Runtime", int, int | None], None]

STEPS: dict[str, StepFn] = {
    DOWNLOAD: download.run,
    PARSE: parse_file.run,
    APPLY: apply_chunk.run,
    FINALIZE: finalize.run,
    WEBHOOK: deliver_webhook.run,
    REVERT: revert_chunk.run,
}


def declare_actors(rt: Runtime) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind every step to this runtime's broker as a dramatiq actor."""
    return {
        name: dramatiq.Actor(
            _handler(rt, name, fn),
            broker=rt.broker,
            actor_name=name,
            queue_name=QUEUE,
            priority=0,
            options={},
        )
        for name, fn in STEPS.items()
    }


def _handler(rt: Runtime, name: str, fn: StepFn) -> Callable[..., None]:
    def handle(ticket: int, chunk: int | None = None) -> None:
        with ticket_context(ticket, name), step_timer(rt, name) as timing:
            try:
                retry_conflicts(lambda: fn(rt, ticket, chunk))
            except StepFailed as exc:
                timing.outcome = "failed"
                logger.warning("step %s failed for good: %s", name, exc)
                give_up(rt, ticket, str(exc), name)
            except BlobUnavailable as exc:  # the ticket waits for the object store, however long it is away
                timing.outcome = "error"
                delay = rt.settings.retry_max_backoff_ms
                logger.warning("step %s: %s; trying again in %d ms", name, exc, delay)
                rt.actors[name].send_with_options(args=(ticket,) if chunk is None else (ticket, chunk), delay=delay)
            except Exception as exc:
                message = CurrentMessage.get_current_message()
                retries = int(message.options.get("retries", 0)) if message else 0
                if retries < rt.settings.max_retries:
                    logger.warning("step %s raised %s (attempt %d); retrying", name, type(exc).__name__, retries + 1)
                    raise
                logger.exception("step %s gave up after %d attempts", name, retries + 1)
                timing.outcome = "failed"
                give_up(rt, ticket, f"internal error in step {name} after {retries + 1} attempts: {type(exc).__name__}: {exc}"[:500], name)

    handle.__name__ = name
    handle.__qualname__ = name
    return handle


def give_up(rt: Runtime, ticket: int, reason: str, step: str | None = None) -> None:
    """End what a step that failed for good leaves open: the import if it still runs; else the
    callback (when the webhook step failed) or an ended atomic import's staging (when finalize did)."""
    def attempt() -> bool:
        view = rt.view(ticket)
        if view is None:
            return False
        new: list[Event]
        if not view.terminal:
            new = [ImportFailed(at=now(), reason=reason, skipped=max(0, (view.total_rows or 0) - view.rows_seen))]
        elif step == FINALIZE and view.staged_rows:
            # Only a running import merges its staging, so these rows can never reach the dataset:
            # record them as rolled back and let the callback go out (the leftover rows are inert).
            new = [RolledBack(at=now(), rows=view.staged_rows)]
        elif step == REVERT and view.reverting:
            # the import stays as it is now (partly reverted); asking for the revert again goes on from here
            new = [RevertFailed(at=now(), reason=reason)]
        elif step in (None, WEBHOOK) and view.spec and view.spec.callback_url and view.webhook.delivered_at is None and not view.webhook.abandoned:
            new = [WebhookAbandoned(at=now(), attempts=view.webhook.attempts)]
        else:
            return False  # a late duplicate of a step the ticket no longer needs: nothing to end
        with write_tx(rt.engine) as conn:
            if not view.terminal and view.spec is not None and view.spec.dry_run:
                records.discard_staged(conn, ticket)  # a dry run's staging ends with it
            event_log.append(conn, ticket, view.seq, new)
        return True

    if retry_conflicts(attempt):
        rt.drive(ticket)  # only after a change: re-driving an unchanged log would resend the failing step
