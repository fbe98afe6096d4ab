"""Re-drive unfinished tickets from the log: at start, on demand, and for stalled ones periodically."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from actors.deliver_webhook import due
from actors.net import backoff_schedule
from events import log as event_log
from events.db import read_tx
from events.flow import WEBHOOK, next_step

if TYPE_CHECKING:
    from actors.runtime import Runtime

logger = logging.getLogger("importer.resume")


def resume(rt: Runtime, *, stalled_for: float | None = None) -> list[int]:
    """Enqueue the next step of every unfinished ticket (only stalled ones when stalled_for is set)."""
    with read_tx(rt.engine) as conn:
        ids = event_log.unfinished_tickets(conn)
        if stalled_for is not None and ids:
            cutoff = datetime.now(UTC) - timedelta(seconds=stalled_for)
            activity = event_log.last_activity(conn, ids)
            ids = [i for i in ids if activity.get(i, cutoff) <= cutoff]
    driven = []
    schedule = backoff_schedule(rt.settings.webhook_schedule)
    clock = time.time()
    for ticket in ids:
        view = rt.view(ticket)
        step = next_step(view) if view is not None else None
        if step is None or view is None:
            continue
        if step.actor == WEBHOOK and not due(view, schedule, clock):
            continue  # a retry is already scheduled; keep to the backoff
        rt.send(ticket, step)
        driven.append(ticket)
    if driven:
        logger.info("re-drove %d unfinished ticket(s): %s", len(driven), driven[:20])
    return driven


class Resumer:
    """A background thread that re-drives tickets with no progress for `stall_seconds`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="importer-resume", daemon=True)

    def start(self) -> None:
        """Start the periodic re-drive."""
        self._thread.start()

    def stop(self) -> None:
        """Stop it and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.rt.settings.resume_interval_seconds):
            try:
                resume(self.rt, stalled_for=self.rt.settings.stall_seconds)
            except Exception:  # keep the loop alive through a database blip
                logger.exception("periodic resume failed")
