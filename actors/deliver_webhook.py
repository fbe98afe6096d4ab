"""Step `deliver_webhook`: POST the dialect's final status, signed; retry on the documented schedule
(except a target the SSRF guard refuses: abandoned at once, with the reason)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from actors.errors import StepFailed
from actors.net import backoff_schedule, deliver, next_delay, redact
from events import catalog, locks
from events import log as event_log
from events.db import is_sqlite, read_tx, write_tx
from events.flow import WEBHOOK, Step, next_step
from events.log import now
from events.projections import ImportView
from events.types import Event, WebhookAbandoned, WebhookAttempted, WebhookDelivered

if TYPE_CHECKING:
    from actors.runtime import Runtime

logger = logging.getLogger("importer.webhook")


def webhook_id(view: ImportView) -> str:
    """One id per ticket's completion message: the same on every retry and redelivery."""
    return f"msg_{view.uuid.replace('-', '')}"


def run(rt: Runtime, ticket: int, _chunk: int | None = None) -> None:
    """Make one delivery attempt and record it; schedule the next or give up."""
    with _delivering(rt, ticket) as mine:
        if mine:  # else another thread or worker is POSTing this callback now and will record it
            _attempt(rt, ticket)


_busy: set[int] = set()
_busy_lock = threading.Lock()


@contextmanager
def _delivering(rt: Runtime, ticket: int) -> Iterator[bool]:
    """Claim the ticket's delivery: one POST at a time per callback, across threads and workers
    (messages are at-least-once, and every worker start re-drives pending callbacks)."""
    if not is_sqlite(rt.engine):  # scaled: workers share PostgreSQL; a session lock spans the POST
        with locks.webhook_delivery(rt.engine, ticket) as mine:
            yield mine
        return
    with _busy_lock:  # embedded: one process, its worker threads
        mine = ticket not in _busy
        _busy.add(ticket)
    try:
        yield mine
    finally:
        if mine:
            with _busy_lock:
                _busy.discard(ticket)


def _attempt(rt: Runtime, ticket: int) -> None:
    view = rt.view(ticket)
    if view is None or view.spec is None or view.spec.callback_url is None or next_step(view) != Step(WEBHOOK):
        return
    row = rt.ticket(ticket)
    with read_tx(rt.engine) as conn:
        tenant = catalog.get_tenant(conn, row.tenant_id)
    assert tenant is not None
    url = row.secret_callback or view.spec.callback_url  # the log holds it redacted
    if rt.render_webhook is None:
        raise StepFailed("this process was started without the dialects' webhook bodies")
    body = rt.render_webhook(view, row, rt.settings.public_url.rstrip("/"))
    msg_id = webhook_id(view)
    number = view.webhook.attempts + 1
    result = deliver(
        url, body, secret=tenant.webhook_secret, msg_id=msg_id, timestamp=int(time.time()),
        allow=rt.allow, timeout=rt.settings.webhook_timeout,
    )
    at = now()
    new: list[Event] = [
        WebhookAttempted(
            at=at, url=redact(url), attempt=number, webhook_id=msg_id, status=result.status,
            error=result.error, duration_ms=result.duration_ms,
        )
    ]
    delay: float | None = None
    if result.ok:
        new.append(WebhookDelivered(at=at, attempt=number))
    elif result.permanent:  # the guard refused the target: retrying for a day cannot change that
        new.append(WebhookAbandoned(at=at, attempts=number, reason=result.error))
    else:
        delay = next_delay(backoff_schedule(rt.settings.webhook_schedule), view.webhook.round_attempts + 1)
        if delay is None:
            new.append(WebhookAbandoned(at=at, attempts=number))
    with write_tx(rt.engine) as conn:
        event_log.append(conn, ticket, view.seq, new)
    if delay is not None:
        logger.info("webhook attempt %d got %s; next in %.1fs", number, result.status or result.error, delay)
        rt.actors[WEBHOOK].send_with_options(args=(ticket,), delay=int(delay * 1000))


def due(view: ImportView, schedule: tuple[float, ...], at: float) -> bool:
    """Whether a pending delivery is due again (so a periodic re-drive keeps to the schedule)."""
    last = view.webhook.last_attempt_at
    n = view.webhook.round_attempts
    if last is None or n == 0:
        return True
    if n > len(schedule):
        return True
    return at >= last.timestamp() + schedule[n - 1] * 1.25
