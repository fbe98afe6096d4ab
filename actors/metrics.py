"""Step metrics every worker process records: step and chunk timings, rows by outcome, queue sizes."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from sqlalchemy import event as sa_event

from actors.broker import QUEUE
from events.tables import events
from events.types import OUTCOME_NAMES

if TYPE_CHECKING:
    from actors.runtime import Runtime

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

STEP_SECONDS = Histogram(
    "importer_step_duration_seconds", "Wall time of one pipeline step, by step and outcome.",
    ["step", "outcome"], buckets=_BUCKETS,
)
CHUNK_SECONDS = Histogram(
    "importer_chunk_duration_seconds", "Wall time of applying one chunk that this process committed.",
    buckets=_BUCKETS,
)
ROWS = Counter("importer_rows", "Rows in chunks this process committed, by outcome.", ["outcome"])


@dataclass
class StepTiming:
    """What a running step reports to its timer; handlers set `outcome` when they catch a failure."""

    outcome: str = "ok"


class _Runs(msgspec.Struct):
    runs: list[tuple[str, int]]


_local = threading.local()
_watched: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_watch_lock = threading.Lock()
_PENDING = "importer_metrics_chunks"


def _after_execute(conn: sa.Connection, clause: Any, multiparams: Any, params: Any, *_: Any) -> None:
    if isinstance(clause, sa.Insert) and clause.table is events:
        rows = multiparams if multiparams else [params]
        bodies = [r["body"] for r in rows if isinstance(r, dict) and r.get("type") == "chunk_applied"]
        if bodies:
            conn.info.setdefault(_PENDING, []).extend(bodies)


def _on_commit(conn: sa.Connection) -> None:
    bodies = conn.info.pop(_PENDING, None)
    committed = getattr(_local, "committed", None)
    if bodies and committed is not None:
        committed.extend(bodies)


def _on_rollback(conn: sa.Connection) -> None:
    conn.info.pop(_PENDING, None)


def _watch(engine: sa.Engine) -> None:
    """Note the ChunkApplied rows this thread commits: only the writer that won a race counts them."""
    with _watch_lock:  # worker threads start their first steps together
        if engine in _watched:
            return
        _watched.add(engine)
        sa_event.listen(engine, "after_execute", _after_execute)
        sa_event.listen(engine, "commit", _on_commit)
        sa_event.listen(engine, "rollback", _on_rollback)


@contextmanager
def step_timer(rt: Runtime, step: str) -> Iterator[StepTiming]:
    """Time one step; for a chunk this call committed, also count its rows by outcome."""
    timing = StepTiming()
    _watch(rt.engine)
    committed: list[bytes] = []
    _local.committed = committed
    t0 = time.perf_counter()
    try:
        yield timing
    except BaseException:
        timing.outcome = "error"
        raise
    finally:
        elapsed = time.perf_counter() - t0
        _local.committed = None
        STEP_SECONDS.labels(step, timing.outcome).observe(elapsed)
        for body in committed:
            CHUNK_SECONDS.observe(elapsed)
            for code, n in msgspec.json.decode(body, type=_Runs).runs:
                ROWS.labels(OUTCOME_NAMES[code]).inc(n)


def queue_depth(rt: Runtime) -> dict[str, int]:
    """Messages waiting in the broker: ready and delayed (Redis LLEN, or the in-process queue sizes)."""
    if rt.worker_process is not None:
        return rt.worker_process.queue_depth()
    delayed = f"{QUEUE}.DQ"
    client = getattr(rt.broker, "client", None)
    if client is not None:
        ns = rt.settings.redis_namespace
        return {"ready": int(client.llen(f"{ns}:{QUEUE}")), "delayed": int(client.llen(f"{ns}:{delayed}"))}
    queues: dict[str, Any] = getattr(rt.broker, "queues", {})
    return {
        "ready": queues[QUEUE].qsize() if QUEUE in queues else 0,
        "delayed": queues[delayed].qsize() if delayed in queues else 0,
    }
