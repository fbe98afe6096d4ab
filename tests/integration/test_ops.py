"""Operator tools: operator auth, the log over HTTP and SSE, export/import byte for byte, replay, webhooks.

Over 400 lines on purpose: every operator tool is driven here against one shared harness setup.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from actors.deliver_webhook import webhook_id
from actors.runtime import Runtime
from actors.settings import load_settings
from app.main import create_app
from app.ops import OPS_TENANT, issue_operator_token
from app.ops_listings import failed_webhooks, history, served_by_service, timeline, verify_views
from app.tenants import create_tenant
from app.wiring import make_runtime
from events import catalog
from events import log as event_log
from events.datasets import parse_schema
from events.db import read_tx, write_tx
from events.export import LogFileError, export_log, import_log
from events.log import now
from events.types import event_type
from tests.support import (
    CONTACTS_SCHEMA,
    Harness,
    contacts,
    need,
    postgres_url,
    receiver,
    redis_url,
    sse,
    submit,
    wait_for,
    write_csv,
)
from tests.support import native_auth as setup

Requests = Sequence[tuple[str, Mapping[str, str]]]


@pytest.fixture(params=["embedded", "scaled"])
def ops(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Like `harness`, with a webhook schedule short enough to exhaust in a test (one retry)."""
    quick = {"webhook_schedule": "0.05", "webhook_timeout": 5.0}
    if request.param == "embedded":
        h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'importer.db'}", **quick)
    else:
        url, ns = request.getfixturevalue("pg_schema_url"), request.getfixturevalue("redis_namespace")
        h = Harness.start(tmp_path, database_url=url, redis_url=redis_url(), redis_namespace=ns, **quick)
    try:
        yield h
    finally:
        h.stop()


@contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[str]:
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'replay-{uuid.uuid4().hex[:8]}.db'}"
        return
    need("postgres")
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in postgres_url() else "?"
        yield f"{postgres_url()}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _fetch(client: TestClient[Any], requests: Requests) -> list[tuple[str, int, bytes]]:
    return [(path, (r := client.get(path, headers=dict(headers))).status_code, r.content) for path, headers in requests]


def assert_replay_identical(
    h: Harness, requests: Requests, tmp: Path, then: Callable[[Runtime, TestClient[Any]], None] | None = None
) -> Path:
    """Export h's log, import it into an empty database of the same kind, and compare every response byte for byte."""
    before = _fetch(h.client, requests)
    assert any(status == 200 for _, status, _ in before), "nothing to compare: every request was refused"
    exported = tmp / f"log-{uuid.uuid4().hex[:8]}.ndjson"
    with exported.open("wb") as fh, read_tx(h.rt.engine) as conn:
        export_log(conn, fh.write)
    with fresh_database(h.rt.engine.dialect.name, tmp) as url:
        rt = make_runtime(load_settings(env={}, data_dir=str(tmp / "replayed"), database_url=url))
        try:
            with exported.open("rb") as fh, write_tx(rt.engine) as conn:
                import_log(conn, fh)
            with TestClient(create_app(runtime=rt, run_worker=False)) as client:
                after = _fetch(client, requests)
                if then is not None:
                    then(rt, client)
        finally:
            rt.close()
    for (path, s1, b1), (_, s2, b2) in zip(before, after, strict=True):
        assert (s2, b2) == (s1, b1), f"GET {path} differs after replay:\nbefore {s1} {b1[:400]!r}\nafter  {s2} {b2[:400]!r}"
    return exported


def operator_auth(h: Harness) -> dict[str, str]:
    with write_tx(h.rt.engine) as conn:
        return {"Authorization": f"Bearer {issue_operator_token(conn)}"}


def bad_rows(n: int, every: int) -> list[list[Any]]:
    rows = contacts(n)
    for i in range(every, n + 1, every):
        rows[i][2] = "not-a-number"
    return rows




def test_ops_endpoints_need_the_operator_token_and_health_stays_open(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(10)))
    embedded.wait(ticket)
    c = embedded.client
    assert c.get(f"/ops/imports/{ticket}/events").status_code == 401
    assert c.get(f"/ops/imports/{ticket}/events", headers=auth).status_code == 401  # a tenant token is not enough
    first = operator_auth(embedded)
    assert c.get(f"/ops/imports/{ticket}/events", headers=first).status_code == 200
    second = operator_auth(embedded)  # rotation: the old token stops working
    assert c.get(f"/ops/imports/{ticket}/events", headers=first).status_code == 401
    assert c.get(f"/ops/imports/{ticket}/events", headers=second).json()["tenant"] == "acme"
    assert c.get("/ops/imports/999/events", headers=second).status_code == 404
    for path in ("/health", "/ready", "/metrics"):
        assert c.get(path).status_code == 200, path


def test_the_log_as_json_and_as_a_resumable_event_stream(ops: Harness, tmp_path: Path) -> None:
    auth = setup(ops)
    op = operator_auth(ops)
    ticket = submit(ops, auth, write_csv(tmp_path / "a.csv", contacts(2600)))
    # Asked for while the import runs: the stream follows the log and ends after the terminal event.
    streamed = sse(ops.client.get(f"/ops/imports/{ticket}/events", headers={**op, "Accept": "text/event-stream"}).text)
    assert ops.rt.view(ticket).state == "completed"  # type: ignore[union-attr]
    native = ops.client.get(f"/imports/{ticket}/events", headers=auth).json()["events"]
    assert [int(m["id"]) for m in streamed] == [e["seq"] for e in native] == list(range(1, len(native) + 1))
    assert [m["event"] for m in streamed] == [e["type"] for e in native]
    assert [json.loads(m["data"]) for m in streamed] == native
    assert streamed[-1]["event"] == "import_completed"
    body = ops.client.get(f"/ops/imports/{ticket}/events", headers=op).json()
    assert (body["ticket"], body["tenant"], body["dialect"], body["events"]) == (ticket, "acme", "native", native)
    resumed = sse(ops.client.get(f"/ops/imports/{ticket}/events", headers={**op, "Accept": "text/event-stream", "Last-Event-ID": "3"}).text)
    assert [int(m["id"]) for m in resumed] == [e["seq"] for e in native[3:]]
    past_the_end = ops.client.get(f"/ops/imports/{ticket}/events", headers={**op, "Accept": "text/event-stream", "Last-Event-ID": str(len(native))})
    assert past_the_end.status_code == 200 and sse(past_the_end.text) == []


def test_a_revert_asked_for_after_the_end_is_streamed_to_a_follower_that_resumes(ops: Harness, tmp_path: Path) -> None:
    """The stream ended at import_completed; a revert asked for later is in the stream resumed after
    that event's id, which ends again once the revert has (import_reverted)."""
    auth = setup(ops)
    op = {**operator_auth(ops), "Accept": "text/event-stream"}
    ticket = submit(ops, auth, write_csv(tmp_path / "a.csv", contacts(1200)))
    ops.wait(ticket)
    first = sse(ops.client.get(f"/ops/imports/{ticket}/events", headers=op).text)
    assert first[-1]["event"] == "import_completed"
    assert ops.client.post(f"/imports/{ticket}/revert", headers=auth).status_code == 202
    wait_for(ops.rt, ticket, lambda v: v.state == "reverted", "the revert to end")
    later = sse(ops.client.get(f"/ops/imports/{ticket}/events", headers={**op, "Last-Event-ID": first[-1]["id"]}).text)
    kinds = [m["event"] for m in later]
    assert kinds[0] == "revert_requested" and kinds[-1] == "import_reverted" and "revert_chunk_applied" in kinds, kinds
    assert [int(m["id"]) for m in later] == list(range(int(first[-1]["id"]) + 1, int(later[-1]["id"]) + 1))
    assert sse(ops.client.get(f"/ops/imports/{ticket}/events", headers={**op, "Last-Event-ID": later[-1]["id"]}).text) == []


def test_export_then_import_reproduces_every_status_byte_for_byte(ops: Harness, tmp_path: Path) -> None:
    acme = setup(ops, "acme")
    globex = setup(ops, "globex")
    with receiver() as rx:
        tickets = [
            submit(ops, acme, write_csv(tmp_path / "ok.csv", contacts(1200))),
            submit(ops, acme, write_csv(tmp_path / "some-bad.csv", bad_rows(700, 50)), callback_url=rx.url),
            submit(ops, acme, write_csv(tmp_path / "atomic.csv", bad_rows(900, 10)), policy="atomic", threshold="5"),
            submit(ops, acme, write_csv(tmp_path / "partial.csv", bad_rows(1100, 3)), threshold="2%"),
            submit(ops, globex, write_csv(tmp_path / "g.csv", contacts(30))),
        ]
        views = [ops.wait(t, until="settled") for t in tickets]
    assert [views[i].state for i in (0, 1, 2, 4)] == ["completed", "completed", "failed", "completed"]
    assert views[3].threshold_exceeded and views[3].skipped
    assert views[1].webhook.delivered_at is not None
    requests: list[tuple[str, Mapping[str, str]]] = []
    for ticket, auth in zip(tickets, [acme] * 4 + [globex], strict=True):
        for path in ("", "/events", "/results", "/results?outcome=failed,skipped&limit=7&offset=3"):
            requests.append((f"/imports/{ticket}{path}", auth))
    requests.append((f"/imports/{tickets[4]}", acme))  # another tenant's ticket: 404 before and after
    max_id = max(tickets)

    def new_ids_follow(rt: Runtime, client: TestClient[Any]) -> None:
        with write_tx(rt.engine) as conn:  # the id sequences moved past the imported ids
            token = create_tenant(conn, "initech")["native"]["token"]
            catalog.put_dataset(conn, catalog.tenant_by_name(conn, "initech").id, "contacts", parse_schema(CONTACTS_SCHEMA), now())  # type: ignore[union-attr]
        with (tmp_path / "ok.csv").open("rb") as fh:
            resp = client.post("/imports", data={"dataset": "contacts"}, files={"file": ("ok.csv", fh)}, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 202 and resp.json()["id"] == max_id + 1, resp.text

    exported = assert_replay_identical(ops, requests, tmp_path, then=new_ids_follow)
    lines = exported.read_bytes().splitlines()
    assert json.loads(lines[0])["format"] == "importer-log" and json.loads(lines[0])["version"] == 1
    kinds = [json.loads(line)["kind"] for line in lines[1:]]
    assert kinds[-1] == "end" and kinds.count("tenant") == 2 and kinds.count("ticket") == 5
    assert b"secret_uri" not in exported.read_bytes()


def test_import_refuses_a_database_in_use_and_damaged_files(ops: Harness, tmp_path: Path) -> None:
    auth = setup(ops)
    ops.wait(submit(ops, auth, write_csv(tmp_path / "a.csv", contacts(20))))
    out = io.BytesIO()
    with read_tx(ops.rt.engine) as conn:
        end = export_log(conn, out.write)
    data = out.getvalue()
    assert (end.tenants, end.tickets) == (1, 1)

    def load(blob: bytes, merge: bool = False) -> dict[str, int]:
        with write_tx(ops.rt.engine) as conn:
            return import_log(conn, io.BytesIO(blob), merge=merge)

    with pytest.raises(LogFileError, match="not empty"):
        load(data)
    assert load(data, merge=True) == {"tenants": 0, "datasets": 0, "batches": 0, "tickets": 0, "events": 0}
    with pytest.raises(LogFileError, match="truncated"):
        load(b"\n".join(data.splitlines()[:-1]), merge=True)
    with pytest.raises(LogFileError, match="version 2"):
        load(data.replace(b'"version":1', b'"version":2', 1), merge=True)
    with pytest.raises(LogFileError, match="header"):
        load(b'{"kind":"tenant"}\n')
    with write_tx(ops.rt.engine) as conn:  # an id that means something else here cannot be merged
        conn.execute(sa.text("UPDATE tickets SET uuid = 'other' WHERE id = 1"))
    with pytest.raises(LogFileError, match="ticket 1"):
        load(data, merge=True)


def test_the_operator_tenant_is_not_exported_and_survives_an_import(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(5)))
    embedded.wait(ticket)
    operator_auth(embedded)
    out = io.BytesIO()
    with read_tx(embedded.rt.engine) as conn:
        export_log(conn, out.write)
    assert OPS_TENANT.encode() not in out.getvalue()
    with fresh_database("sqlite", tmp_path) as url:
        rt = make_runtime(load_settings(env={}, data_dir=str(tmp_path / "other"), database_url=url))
        with write_tx(rt.engine) as conn:  # the new deployment's operator token exists first (tenant id 1)
            token = issue_operator_token(conn)
        with write_tx(rt.engine) as conn:
            import_log(conn, io.BytesIO(out.getvalue()))
        with TestClient(create_app(runtime=rt, run_worker=False)) as client:
            assert client.get(f"/ops/imports/{ticket}/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert client.get(f"/imports/{ticket}", headers=auth).json()["state"] == "completed"
        rt.close()


def test_replay_timeline_and_verify(ops: Harness, tmp_path: Path) -> None:
    auth = setup(ops)
    ticket = submit(ops, auth, write_csv(tmp_path / "a.csv", bad_rows(1100, 100)))
    final = ops.wait(ticket)
    with read_tx(ops.rt.engine) as conn:
        steps = timeline(ticket, event_log.read(conn, ticket))
    assert [s["event"] for s in steps][:3] == ["import_requested", "file_stored", "file_parsed"]
    assert [s["seen"] for s in steps if s["event"] == "chunk_applied"] == [500, 1000, 1100]
    last = steps[-1]
    assert (last["state"], last["created"], last["failed"], last["percentage"]) == ("completed", final.created, 11, 100)
    assert verify_views(ops.rt.engine) == (1, [])
    op = operator_auth(ops)
    served = served_by_service("http://testserver", op["Authorization"][7:], client=ops.client)
    assert verify_views(ops.rt.engine, served) == (1, [])
    stale = msgspec.structs.replace(final, created=final.created - 1)
    ops.rt.views._views[ticket] = stale  # what a process serving an out-of-date fold would show
    assert verify_views(ops.rt.engine, served) == (1, [(ticket, ["created"])])


def test_webhook_redelivery_appends_an_event_and_keeps_the_webhook_id(ops: Harness, tmp_path: Path) -> None:
    auth = setup(ops)
    op = operator_auth(ops)
    with receiver() as rx:
        rx.status = 500
        ticket = submit(ops, auth, write_csv(tmp_path / "a.csv", contacts(10)), callback_url=rx.url)
        view = ops.wait(ticket, until="settled")
        assert view.webhook.abandoned and view.webhook.attempts == 2
        [failed] = failed_webhooks(ops.rt.engine, tenant="acme")
        assert (failed["ticket"], failed["state"], failed["attempts"], failed["last_status"]) == (ticket, "abandoned", 2, 500)
        assert ops.client.post(f"/ops/imports/{ticket}/webhook/redeliver", headers=auth).status_code == 401
        rx.status = 204
        resp = ops.client.post(f"/ops/imports/{ticket}/webhook/redeliver", headers=op)
        assert resp.status_code == 202, resp.text
        view = ops.wait(ticket, until="settled")
        assert view.webhook.delivered_at is not None and view.webhook.attempts == 3
        assert list(failed_webhooks(ops.rt.engine, tenant="acme")) == []
        assert ops.client.post(f"/ops/imports/{ticket}/webhook/redeliver", headers=op).status_code == 202  # again, on request
        view = wait_for(ops.rt, ticket, lambda v: v.webhook.delivered_at is not None and v.webhook.attempts == 4)
        assert {r["webhook-id"] for r in rx.received} == {webhook_id(view)} and len(rx.received) == 4
    with read_tx(ops.rt.engine) as conn:
        types = [event_type(s.event) for s in event_log.read(conn, ticket)]
    tail = types[types.index("import_completed") + 1 :]
    assert tail == ["webhook_attempted", "webhook_attempted", "webhook_abandoned", "webhook_redelivery_requested",
                    "webhook_attempted", "webhook_delivered", "webhook_redelivery_requested", "webhook_attempted", "webhook_delivered"]
    plain = submit(ops, auth, write_csv(tmp_path / "b.csv", contacts(3)))
    ops.wait(plain)
    assert ops.client.post(f"/ops/imports/{plain}/webhook/redeliver", headers=op).json()["error"]["code"] == "no_callback"
    assert ops.client.post("/ops/imports/4242/webhook/redeliver", headers=op).status_code == 404


def test_history_lists_imports_with_counts_and_timings(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ok = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(40)))
    bad = submit(embedded, auth, write_csv(tmp_path / "b.csv", bad_rows(40, 2)), policy="atomic", threshold="1")
    embedded.wait(ok), embedded.wait(bad)
    rows = list(history(embedded.rt.engine, tenant=None, state=None, since=None, limit=10))
    assert [r["id"] for r in rows] == [bad, ok]
    assert rows[1]["created"] == 40 and rows[1]["seconds"] is not None and rows[1]["dialect"] == "native"
    assert [r["id"] for r in history(embedded.rt.engine, tenant="acme", state="failed", since=None, limit=10)] == [bad]
    assert list(history(embedded.rt.engine, tenant="nobody", state=None, since=None, limit=10)) == []
    assert len(list(history(embedded.rt.engine, tenant=None, state=None, since=None, limit=1))) == 1


def _cli(env: Mapping[str, str], *args: str) -> Any:
    from typer.testing import CliRunner

    from app.cli import cli

    return CliRunner().invoke(cli, list(args), env=dict(env))


def test_cli_operator_commands(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ok = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(700)))
    bad = submit(embedded, auth, write_csv(tmp_path / "b.csv", bad_rows(40, 2)), policy="atomic", threshold="1")
    embedded.wait(ok), embedded.wait(bad)
    env = {"IMPORTER_DATABASE_URL": embedded.settings.database_url, "IMPORTER_DATA_DIR": str(tmp_path / "data")}

    token = _cli(env, "ops", "token").stdout.strip().splitlines()[-1]
    assert embedded.client.get(f"/ops/imports/{ok}/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    lines = [json.loads(line) for line in _cli(env, "events", str(ok)).stdout.splitlines()]
    assert [(e["ticket"], e["seq"]) for e in lines] == [(ok, i) for i in range(1, len(lines) + 1)]
    assert lines[-1]["type"] == "import_completed"
    assert _cli(env, "events", str(ok), "--follow").stdout.count("\n") == len(lines)  # a finished log: follow ends
    table = _cli(env, "events", "show", str(ok), "--table").stdout
    assert "import_completed" in table and "chunk 1 from row 500" in table
    assert _cli(env, "events", "999").exit_code == 1

    listed = [json.loads(line) for line in _cli(env, "imports", "list", "--json").stdout.splitlines()]
    assert [(r["id"], r["state"]) for r in listed] == [(bad, "failed"), (ok, "completed")]
    assert f"{ok}" in _cli(env, "imports", "list", "--state", "completed", "--since", "1h").stdout

    steps = [json.loads(line) for line in _cli(env, "replay", str(ok), "--json").stdout.splitlines()]
    assert (steps[-1]["state"], steps[-1]["created"]) == ("completed", 700)
    assert "completed" in _cli(env, "replay", str(ok)).stdout
    verified = _cli(env, "replay", "--verify")
    assert verified.exit_code == 0 and '"verified": 2' in verified.stderr
    assert _cli(env, "replay").exit_code == 2
    assert _cli(env, "webhooks", "list-failed", "--json").stdout == ""

    rotated = _cli(env, "tenants", "rotate-webhook-secret", "acme").stdout.strip()
    with read_tx(embedded.rt.engine) as conn:
        assert rotated.startswith("whsec_") and catalog.tenant_by_name(conn, "acme").webhook_secret == rotated  # type: ignore[union-attr]
    assert _cli(env, "tenants", "rotate-webhook-secret", "nobody").exit_code == 1

    exported = tmp_path / "log.ndjson"
    assert _cli(env, "events", "export", "-o", str(exported), "--tenant", "acme", "--since", "1d").exit_code == 0
    other = {"IMPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}", "IMPORTER_DATA_DIR": str(tmp_path / "other")}
    first = _cli(other, "events", "import", str(exported))
    assert first.exit_code == 0 and json.loads(first.stdout)["imported"]["tickets"] == 2
    again = _cli(other, "events", "import", str(exported))
    assert again.exit_code == 1 and "not empty" in again.stderr
    merged = _cli(other, "events", "import", str(exported), "--merge")
    assert merged.exit_code == 0 and json.loads(merged.stdout)["imported"]["events"] == 0
    assert _cli(env, "events", "export", "--tenant", "nobody").exit_code == 1


def test_cli_redeliver_in_embedded_mode_makes_the_attempt_itself(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    with receiver() as rx:
        ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(5)), callback_url=rx.url)
        assert embedded.wait(ticket, until="settled").webhook.delivered_at is not None
        env = {
            "IMPORTER_DATABASE_URL": embedded.settings.database_url, "IMPORTER_DATA_DIR": str(tmp_path / "data"),
            "IMPORTER_ALLOWED_HOSTS": "127.0.0.1",
        }
        result = _cli(env, "webhooks", "redeliver", str(ticket))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["outcome"] == "delivered"
        assert len(rx.received) == 2 and len({r["webhook-id"] for r in rx.received}) == 1
    assert _cli(env, "webhooks", "redeliver", "4242").exit_code == 1


def test_replay_verify_against_a_running_service_exits_1_on_a_difference(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(30)))
    view = embedded.wait(ticket)
    token = operator_auth(embedded)["Authorization"][7:]
    with embedded.served() as url:
        env = {"IMPORTER_DATABASE_URL": embedded.settings.database_url, "IMPORTER_DATA_DIR": str(tmp_path / "data")}
        args = ("replay", "--verify", "--url", url, "--token", token)
        assert _cli(env, *args).exit_code == 0
        embedded.rt.views._views[ticket] = msgspec.structs.replace(view, failed=7)  # a stale fold
        result = _cli(env, *args)
        assert result.exit_code == 1 and json.loads(result.stdout) == {"ticket": ticket, "differs": ["failed"]}
        assert _cli(env, "replay", "--verify", "--url", url).exit_code == 2


def test_export_piped_into_import_between_processes(embedded: Harness, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    auth = setup(embedded)
    ticket = submit(embedded, auth, write_csv(tmp_path / "a.csv", contacts(50)))
    embedded.wait(ticket)
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
    src = {**base, "IMPORTER_DATABASE_URL": embedded.settings.database_url, "IMPORTER_DATA_DIR": str(tmp_path / "d1")}
    dst = {**base, "IMPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'copy.db'}", "IMPORTER_DATA_DIR": str(tmp_path / "d2")}
    exporter = subprocess.Popen([sys.executable, "-m", "app.cli", "events", "export"], env=src, stdout=subprocess.PIPE)
    imported = subprocess.run([sys.executable, "-m", "app.cli", "events", "import", "-"], env=dst, stdin=exporter.stdout, capture_output=True, text=True, timeout=120)
    assert exporter.wait(60) == 0 and imported.returncode == 0, imported.stderr
    with read_tx(embedded.rt.engine) as conn:
        events = len(event_log.read(conn, ticket))
    assert json.loads(imported.stdout)["imported"] == {"tenants": 1, "datasets": 1, "batches": 0, "tickets": 1, "events": events}
