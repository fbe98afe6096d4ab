"""Prometheus metrics: step timings and rows counted in-process, import counts read from the log per scrape."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import event as sa_event

from events.db import read_tx
from events.tables import events, tickets
from events.types import TERMINAL_TYPES

logger = logging.getLogger("importer.metrics")

if TYPE_CHECKING:
    from actors.runtime import Runtime

OUTCOMES = {"c": "created", "u": "updated", "n": "unchanged", "i": "ignored", "f": "failed", "s": "skipped"}
STATE_OF = {"import_completed": "completed", "import_failed": "failed", "import_canceled": "canceled"}
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
                ROWS.labels(OUTCOMES[code]).inc(n)


def import_counts(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """Tickets by (state, dialect): terminal ones by their terminal event, the rest as "running"."""
    # Appends are optimistic (expected seq), so a ticket's log holds at most one terminal event.
    ended = conn.execute(
        sa.select(tickets.c.dialect, events.c.type, sa.func.count())
        .select_from(events.join(tickets, tickets.c.id == events.c.ticket))
        .where(events.c.type.in_(sorted(TERMINAL_TYPES)))
        .group_by(tickets.c.dialect, events.c.type)
    )
    counts: dict[tuple[str, str], int] = {}
    for dialect, kind, n in ended:
        counts[(STATE_OF[kind], dialect)] = int(n)
    for dialect, total in conn.execute(sa.select(tickets.c.dialect, sa.func.count()).group_by(tickets.c.dialect)):
        finished = sum(counts.get((state, dialect), 0) for state in STATE_OF.values())
        counts[("running", dialect)] = max(0, int(total) - finished)
        for state in STATE_OF.values():
            counts.setdefault((state, dialect), 0)
    return counts


def webhook_counts(conn: sa.Connection) -> dict[str, int]:
    """How many webhook events of each type the log holds."""
    kinds = ("webhook_attempted", "webhook_delivered", "webhook_abandoned", "webhook_redelivery_requested")
    rows = conn.execute(
        sa.select(events.c.type, sa.func.count()).where(events.c.type.in_(kinds)).group_by(events.c.type)
    )
    found = {kind: int(n) for kind, n in rows}
    return {kind: found.get(kind, 0) for kind in kinds}


def queue_depth(rt: Runtime) -> dict[str, int]:
    """Messages waiting in the broker: ready and delayed (Redis LLEN, or the in-process queue sizes)."""
    from actors.broker import QUEUE

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


class LogCollector(Collector):
    """Counts computed at scrape time: a few grouped, index-backed queries over the events table."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        """Yield the log-derived metric families."""
        t0 = time.perf_counter()
        with read_tx(self.rt.engine) as conn:
            imports = import_counts(conn)
            hooks = webhook_counts(conn)
        query_seconds = time.perf_counter() - t0
        gauge = GaugeMetricFamily("importer_imports", "Imports by state and dialect, from the event log.", labels=["state", "dialect"])
        for (state, dialect), n in sorted(imports.items()):
            gauge.add_metric([state, dialect], n)
        yield gauge
        attempts = CounterMetricFamily("importer_webhook_attempts", "Webhook delivery attempts by outcome, from the log.", labels=["outcome"])
        attempts.add_metric(["delivered"], hooks["webhook_delivered"])
        attempts.add_metric(["failed"], max(0, hooks["webhook_attempted"] - hooks["webhook_delivered"]))
        yield attempts
        yield CounterMetricFamily("importer_webhooks_abandoned", "Callbacks given up after the last retry.", value=hooks["webhook_abandoned"])
        yield CounterMetricFamily("importer_webhook_redeliveries", "Operator redelivery requests.", value=hooks["webhook_redelivery_requested"])
        depth = GaugeMetricFamily("importer_queue_messages", "Messages waiting in the broker.", labels=["kind"])
        try:
            sizes = queue_depth(self.rt)
        except Exception as exc:  # the broker is down: the rest of the scrape still answers (no 500)
            logger.warning("queue sizes unavailable: %s", exc)
            sizes = {}
        for kind, n in sizes.items():
            depth.add_metric([kind], n)
        yield depth
        yield GaugeMetricFamily("importer_broker_up", "1 when the broker answered this scrape, else 0.", value=1 if sizes else 0)
        yield GaugeMetricFamily("importer_metrics_query_seconds", "Time this scrape spent reading the log.", value=query_seconds)


class _Except(Collector):
    """A registry's families but the named ones."""

    def __init__(self, registry: CollectorRegistry, skip: set[str]) -> None:
        self.registry = registry
        self.skip = skip

    def collect(self) -> Iterator[Metric]:
        return (family for family in self.registry.collect() if family.name not in self.skip)


def render(rt: Runtime) -> bytes:
    """The /metrics body: this process's registry, then the log-derived families.

    When `serve` runs its worker as a child process, the step timings and row counts are the
    child's, read from its prometheus multiprocess files, in place of this process's (zero) ones.
    """
    child = rt.worker_process
    if child is None:
        return generate_latest(REGISTRY) + generate_latest(LogCollector(rt))
    from prometheus_client.multiprocess import MultiProcessCollector

    steps = CollectorRegistry()
    MultiProcessCollector(steps, path=child.metrics_dir)  # type: ignore[no-untyped-call]
    skip = {STEP_SECONDS._name, CHUNK_SECONDS._name, ROWS._name}
    return generate_latest(_Except(REGISTRY, skip)) + generate_latest(steps) + generate_latest(LogCollector(rt))


def serve_worker_metrics(port: int, processes: int = 1) -> Any:
    """Serve a worker's metrics on `port` (returns the server); several processes are summed (multiprocess mode)."""
    import os

    from prometheus_client import start_http_server

    if processes <= 1:
        return start_http_server(port)[0]
    from prometheus_client.multiprocess import MultiProcessCollector

    # Spawned children import prometheus_client afresh and see this directory: they write their
    # samples there and this process serves the sum.
    path = tempfile.mkdtemp(prefix="importer-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return start_http_server(port, registry=registry)[0]
