"""DESIGN.md invariants that need more than one import: streaming memory, replay, resume after restart."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import sqlalchemy as sa

from actors import apply_chunk, finalize, parse_file
from actors.runtime import Runtime
from actors.settings import load_settings
from app.wiring import make_runtime
from events.db import make_engine
from events.tables import metadata
from tests.support import Harness, contacts, write_csv


def _drive_by_hand(rt: Runtime, ticket: int) -> None:
    """Run the steps in this thread (no worker) so tracemalloc sees all of their allocations."""
    parse_file.run(rt, ticket)
    view = rt.view(ticket)
    assert view is not None and view.parsed is not None, view
    for n in range(view.parsed.chunks):
        apply_chunk.run(rt, ticket, n)
    finalize.run(rt, ticket)


def _peak_for(tmp: Path, rows: int) -> int:
    settings = load_settings(env={}, data_dir=str(tmp / f"d{rows}"), chunk_size=1000)
    rt = make_runtime(settings)  # an in-process broker nobody consumes: we call the steps ourselves
    from app.service import start_import
    from app.tenants import create_tenant
    from app.uploads import UploadedFile
    from events import catalog
    from events.datasets import parse_schema
    from events.db import write_tx
    from events.log import now
    from events.types import ImportSpec
    from tests.support import CONTACTS_SCHEMA

    with write_tx(rt.engine) as conn:
        create_tenant(conn, "acme")
        tenant = catalog.tenant_by_name(conn, "acme")
        assert tenant is not None
        catalog.put_dataset(conn, tenant.id, "contacts", parse_schema(CONTACTS_SCHEMA), now())
    path = write_csv(tmp / f"big{rows}.csv", contacts(rows))
    upload = UploadedFile(path=path, filename=path.name, size=path.stat().st_size, sha256="x", content_type=None)
    ticket, _ = start_import(rt, tenant, ImportSpec(dataset="contacts"), upload=upload)
    tracemalloc.start()
    try:
        _drive_by_hand(rt, ticket)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    view = rt.view(ticket)
    assert view is not None and view.state == "completed" and view.created == rows
    rt.close()
    return peak


def test_memory_stays_flat_as_files_grow(tmp_path: Path) -> None:
    """Invariant 4: ten times the rows must not take ten times the memory (chunks of N rows)."""
    small = _peak_for(tmp_path, 5_000)
    large = _peak_for(tmp_path, 50_000)
    assert large < small * 1.6 + 2_000_000, (small, large)


def _copy_log(src: sa.Engine, dst_url: str) -> sa.Engine:
    """Copy only what the log needs (tenants, credentials, datasets, tickets, events): no records."""
    dst = make_engine(dst_url)
    with src.connect() as a, dst.begin() as b:
        for name in ("tenants", "credentials", "datasets", "tickets", "events"):
            table = metadata.tables[name]
            rows = [dict(r._mapping) for r in a.execute(sa.select(table))]
            if rows:
                b.execute(table.insert(), rows)
    return dst


def test_replaying_the_log_into_an_empty_database_reproduces_every_status_byte_for_byte(embedded: Harness, tmp_path: Path) -> None:
    """Invariant 6: the projections are a pure function of the log."""
    creds = embedded.tenant("acme")
    embedded.dataset("acme")
    token = creds["native"]["token"]
    rows = contacts(700)
    rows[5][2] = "x"
    tickets = []
    for i, extra in enumerate([{}, {"policy": "atomic", "threshold": "0"}, {"mode": "insert"}]):
        resp = embedded.upload(token, write_csv(tmp_path / f"{i}.csv", rows), dataset="contacts", **extra)
        tickets.append(resp.json()["id"])
        embedded.wait(tickets[-1])
    auth = {"Authorization": f"Bearer {token}"}
    paths = [p for t in tickets for p in (f"/imports/{t}", f"/imports/{t}/results?limit=1000", f"/imports/{t}/events")]
    before = {p: embedded.client.get(p, headers=auth).content for p in paths}

    dst = _copy_log(embedded.rt.engine, f"sqlite:///{tmp_path / 'replayed.db'}")
    replay = Harness(make_runtime(embedded.settings, engine=dst), embedded.worker, tmp_path)
    try:
        after = {p: replay.client.get(p, headers=auth).content for p in paths}
    finally:
        if replay._client is not None:
            replay._client.__exit__(None, None, None)
        dst.dispose()
    assert after == before


def test_unfinished_imports_resume_after_a_restart_that_lost_the_queue(harness: Harness, tmp_path: Path) -> None:
    """Nothing lost: the log, not the broker, says what is owed; a new worker re-drives it."""
    creds = harness.tenant("acme")
    harness.dataset("acme")
    token = creds["native"]["token"]
    harness.worker.worker.pause()
    resp = harness.upload(token, write_csv(tmp_path / "r.csv", contacts(1500)), dataset="contacts")
    ticket = resp.json()["id"]
    harness.worker.stop()
    if harness.settings.redis_url:  # the queue's contents are lost too
        import redis

        client = redis.Redis.from_url(harness.settings.redis_url)
        keys = list(client.scan_iter(f"{harness.settings.redis_namespace}*"))
        if keys:
            client.delete(*keys)
    harness.rt.close()

    restarted = Harness.start(tmp_path, **{k: getattr(harness.settings, k) for k in ("database_url", "redis_url", "redis_namespace", "data_dir", "chunk_size")})
    try:
        view = restarted.wait(ticket)
        assert view.state == "completed" and view.created == 1500
        assert len(restarted.records("acme")) == 1500
    finally:
        restarted.stop()
