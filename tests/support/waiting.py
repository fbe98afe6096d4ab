"""The one way a test waits: poll the ticket's event log (its view) until a condition holds, with a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

from actors.runtime import Runtime
from events.projections import ImportView


def wait_for(
    rt: Runtime,
    ticket: int,
    done: Callable[[ImportView], bool],
    what: str = "the awaited state",
    timeout: float = 60.0,
    alive: Callable[[], str | None] | None = None,
) -> ImportView:
    """Poll the ticket's log until `done(view)`; fail early if `alive()` reports a dead process."""
    deadline = time.monotonic() + timeout
    view = None
    while time.monotonic() < deadline:
        view = rt.view(ticket)
        if view is not None and done(view):
            return view
        if alive is not None and (problem := alive()) is not None:
            raise AssertionError(f"ticket {ticket}, waiting for {what}: {problem}; last view: {view}")
        time.sleep(0.02)
    raise AssertionError(f"ticket {ticket}: {what} did not happen within {timeout}s; last view: {view}")


def terminal(view: ImportView) -> bool:
    """Completed, failed or canceled."""
    return view.terminal


def settled(view: ImportView) -> bool:
    """Terminal, and its callback (if any) delivered or abandoned."""
    if not view.terminal:
        return False
    if view.spec is None or not view.spec.callback_url:
        return True
    return view.webhook.delivered_at is not None or view.webhook.abandoned
