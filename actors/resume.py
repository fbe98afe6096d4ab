"""Re-drive unfinished tickets from the log: at start, on demand, when stalled, when the broker lost its queues."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from actors.deliver_webhook import due
from actors.net import backoff_schedule
from actors.remove_expired import remove_expired
from events import log as event_log
from events.db import read_tx
from events.flow import WEBHOOK, steps

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
        owed = steps(view) if view is not None else []
        if not owed or view is None:
            continue
        if owed[0].actor == WEBHOOK and not due(view, schedule, clock):
            continue  # a retry is already scheduled; keep to the backoff
        for step in owed:  # every due chunk: one of them may be all that stalled
            rt.send(ticket, step)
        driven.append(ticket)
    if driven:
        logger.info("re-drove %d unfinished ticket(s): %s", len(driven), driven[:20])
    return driven


class BrokerEpoch:
    """Notices a Redis that came back empty (restarted without persistence, failed over): the epoch
    key it held is gone. Queued messages went with it, so the worker that sets the new epoch
    re-drives every unfinished ticket at once instead of waiting for the stall timeout."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.key = f"{namespace}:__epoch__"
        self.seen: bytes | None = None
        self.down = False

    def lost(self) -> bool:
        """True once per loss of the broker's data, in the one worker that noticed it first."""
        try:
            mine = uuid.uuid4().hex.encode()
            if self.client.set(self.key, mine, nx=True):
                first, self.seen = self.seen is None, mine
                return not first  # at start the start-up resume has just re-driven everything
            self.seen = self.client.get(self.key)
        except Exception as exc:  # Redis is down right now; the next look may find it back
            if not self.down:
                logger.warning("broker unreachable (%s); its queues will be re-driven when it is back", exc)
            self.down = True
            return False
        if self.down:
            logger.info("broker reachable again")
        self.down = False
        return False


class Resumer:
    """A background thread: re-drives tickets with no progress for `stall_seconds`, re-drives
    everything when the broker lost its queues, and removes files past their retention."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        client = getattr(rt.broker, "client", None)  # the Redis broker's; an in-process one has none
        self.epoch = BrokerEpoch(client, rt.settings.redis_namespace) if client is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="importer-resume", daemon=True)

    def start(self) -> None:
        """Start the periodic re-drive."""
        if self.epoch is not None:
            self.epoch.lost()  # remember the broker's epoch (or set the first one)
        self._thread.start()

    def stop(self) -> None:
        """Stop it and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        s = self.rt.settings
        tick = min(s.broker_check_seconds, s.resume_interval_seconds) if self.epoch else s.resume_interval_seconds
        last = time.monotonic()
        while not self._stop.wait(tick):
            try:
                if self.epoch is not None and self.epoch.lost():
                    logger.warning("the broker came back empty: re-driving every unfinished ticket")
                    resume(self.rt)
                if time.monotonic() - last >= s.resume_interval_seconds:
                    last = time.monotonic()
                    resume(self.rt, stalled_for=s.stall_seconds)
                    remove_expired(self.rt)
            except Exception:  # keep the loop alive through a database or object-store blip
                logger.exception("periodic resume failed")
