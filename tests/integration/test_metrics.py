"""Observability: /metrics (log-derived counts, step timings, queue depth), /health, /ready, JSON logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from actors.logs import setup_logging
from actors.settings import load_settings
from app.main import create_app
from app.metrics import serve_worker_metrics
from app.wiring import make_runtime
from events import catalog
from events import log as event_log
from events.db import write_tx
from events.log import now
from events.types import FileParsed, FileStored, ImportRequested, ImportSpec
from tests.support import (
    Harness,
    contacts,
    free_port,
    receiver,
    redis_url,
    submit,
    wait_for,
    write_csv,
)
from tests.support import native_auth as setup

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    """Prometheus text as {(sample name, labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _park(h: Harness, tenant: str, stage: str) -> int:
    """A ticket left at a stage (nothing is enqueued): it counts as running."""
    at = now()
    with write_tx(h.rt.engine) as conn:
        t = catalog.tenant_by_name(conn, tenant)
        assert t is not None
        ds = catalog.get_dataset(conn, t.id, "contacts")
        assert ds is not None
        uid = f"00000000-0000-4000-8000-{int(time.time() * 1e6) % 10**12:012d}"
        ticket = catalog.insert_ticket(
            conn, uuid=uid, tenant_id=t.id, dataset_id=ds.id, dialect="yesmail", dedup_key=None,
            has_callback=False, secret_uri=None, at=at,
        )
        new: list[Any] = [ImportRequested(at=at, tenant=tenant, spec=ImportSpec(dataset="contacts", dialect="yesmail", source_uri="http://192.0.2.1/x.csv"), uuid=uid)]
        if stage == "processing":
            new += [FileStored(at=at, blob="none", size=1, sha256="0", format="csv"), FileParsed(at=at, total_rows=10, chunks=1)]
        event_log.append(conn, ticket, 0, new)
    return ticket


def test_metrics_count_imports_steps_rows_queue_and_webhooks(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    before = scrape(harness.client.get("/metrics").text)
    with receiver() as rx:
        done = [
            submit(harness, auth, write_csv(tmp_path / "a.csv", contacts(1200))),
            submit(harness, auth, write_csv(tmp_path / "b.csv", contacts(10, start=5000)), callback_url=rx.url),
        ]
        for ticket in done:
            harness.wait(ticket, until="settled")
    _park(harness, "acme", "accepted")
    _park(harness, "acme", "processing")
    resp = harness.client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    after = scrape(resp.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "importer_imports", state="completed", dialect="native") == 2
    assert value(after, "importer_imports", state="failed", dialect="native") == 0
    assert value(after, "importer_imports", state="running", dialect="native") == 0
    assert value(after, "importer_imports", state="running", dialect="yesmail") == 2
    assert delta("importer_rows_total", outcome="created") == 1210
    assert delta("importer_chunk_duration_seconds_count") == 4  # 3 chunks of 500, then 1
    assert delta("importer_step_duration_seconds_count", step="apply_chunk", outcome="ok") == 4
    assert delta("importer_step_duration_seconds_count", step="parse_file", outcome="ok") == 2
    assert delta("importer_step_duration_seconds_count", step="deliver_webhook", outcome="ok") == 1
    assert value(after, "importer_webhook_attempts_total", outcome="delivered") == 1
    assert value(after, "importer_webhook_attempts_total", outcome="failed") == 0
    assert value(after, "importer_webhooks_abandoned_total") == 0
    assert ("importer_queue_messages", frozenset({("kind", "ready")})) in after
    assert value(after, "importer_metrics_query_seconds") > 0


def test_health_and_ready_and_ready_fails_without_the_database(embedded: Harness) -> None:
    c = embedded.client
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/ready").json() == {"status": "ok", "checks": {"database": "ok", "broker": "in-process", "blobs": "ok"}}
    good = embedded.rt.engine
    embedded.rt.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    try:
        resp = c.get("/ready")
        assert resp.status_code == 503 and resp.json()["checks"]["database"].startswith("error")
        assert c.get("/health").status_code == 200
    finally:
        embedded.rt.engine.dispose()
        embedded.rt.engine = good


def test_ready_checks_redis_when_scaled(pg_schema_url: str, redis_namespace: str, tmp_path: Path) -> None:
    settings = load_settings(env={}, data_dir=str(tmp_path), database_url=pg_schema_url, redis_url=redis_url(), redis_namespace=redis_namespace)
    rt = make_runtime(settings)
    try:
        with TestClient(create_app(runtime=rt, run_worker=False)) as client:
            assert client.get("/ready").json()["checks"] == {"database": "ok", "broker": "ok", "blobs": "ok"}
    finally:
        rt.close()


def test_a_pipeline_step_logs_json_lines_with_the_ticket_id(embedded: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    auth = setup(embedded)
    assert embedded.client  # build the app first: it reconfigures logging (see the xfail test below)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("json", "INFO")  # as `importer worker` does with IMPORTER_LOG_FORMAT=json
    try:
        with receiver() as rx:
            rx.status = 503  # the first attempt fails: the webhook step logs its retry
            ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(5)), callback_url=rx.url)
            wait_for(embedded.rt, ticket, lambda v: v.webhook.attempts >= 1)
            embedded.worker.stop()  # in-flight steps finish, and log, before stop returns
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    step_lines = [r for r in lines if r.get("logger") == "importer.webhook"]
    assert step_lines, lines
    assert all(r["ticket"] == ticket and r["step"] == "deliver_webhook" and r["level"] == "info" for r in step_lines)
    assert "webhook attempt 1 got 503" in step_lines[0]["message"]


def test_json_logging_survives_building_the_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("json", "INFO")  # `importer serve` configures logging, then uvicorn builds the app
    try:
        rt = make_runtime(load_settings(env={}, data_dir=str(tmp_path)))
        with TestClient(create_app(runtime=rt, run_worker=False)):
            logging.getLogger("importer.test").info("after start-up")
        rt.close()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert '"message": "after start-up"' in capsys.readouterr().err


def test_a_worker_serves_its_own_metrics() -> None:
    server = serve_worker_metrics(free_port())
    try:
        text = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
        assert "importer_step_duration_seconds" in text and "importer_rows_total" in text
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_worker_processes_sum_their_metrics_on_one_port(pg_schema_url: str, redis_namespace: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORTER_", "PROMETHEUS_"))}
    env |= {
        "IMPORTER_DATABASE_URL": pg_schema_url, "IMPORTER_REDIS_URL": redis_url(), "IMPORTER_REDIS_NAMESPACE": redis_namespace,
        "IMPORTER_DATA_DIR": str(tmp_path / "data"), "IMPORTER_CHUNK_SIZE": "100", "IMPORTER_LOG_FORMAT": "json",
    }
    port = free_port()
    code = (
        "from app.metrics import serve_worker_metrics; from actors.worker import run_workers; from app.wiring import make_runtime; "
        f"from actors.settings import load_settings; serve_worker_metrics({port}, 2); run_workers(load_settings(), 2, 2, make_runtime)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    settings = load_settings(env=env)
    rt = make_runtime(settings)
    h = Harness(rt, worker=None, tmp=tmp_path)  # type: ignore[arg-type]  # no worker here: the processes consume
    try:
        auth = setup(h)
        h.wait(submit(h, auth, write_csv(tmp_path / "a.csv", contacts(1000))))
        deadline = time.monotonic() + 30
        while True:  # the port answers once the parent process has started its server
            try:
                samples = scrape(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert value(samples, "importer_rows_total", outcome="created") == 1000
        assert value(samples, "importer_chunk_duration_seconds_count") == 10
    finally:
        proc.terminate()
        proc.wait(30)
        if h._client is not None:
            h._client.__exit__(None, None, None)
        rt.close()
