"""The /metrics body and the worker's metrics server: this process's registry plus counts read from the log per scrape."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from actors.metrics import CHUNK_SECONDS, ROWS, STEP_SECONDS, queue_depth
from events.db import read_tx
from events.stats import import_counts, webhook_counts

logger = logging.getLogger("importer.metrics")

if TYPE_CHECKING:
    from actors.runtime import Runtime


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
