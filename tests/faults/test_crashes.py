"""Crashes against real processes (PostgreSQL, Redis, `importer worker`): nothing accepted is lost,
every row lands exactly once, whatever dies and wherever."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from actors import apply_chunk, parse_file
from actors.pipeline import give_up
from actors.runtime import Runtime
from app.wiring import make_runtime
from events import catalog
from events.datasets import parse_schema
from events.db import make_engine, read_tx, write_tx
from events.flow import PARSE, WEBHOOK, Step
from events.log import now
from events.tables import tickets
from tests.support import (
    CONTACTS_SCHEMA,
    Scaled,
    check_exactly_once,
    check_log,
    contacts,
    on_private_redis,
    receiver,
    requeue_unacked,
    serving_importer,
    serving_site,
    settled,
    staged_count,
    ticket_records,
    types_of,
    wait_drained,
    wait_for,
    write_csv,
)

ROWS = 2000  # 10 chunks of 200


class Kill:
    """A place to SIGKILL a worker, and what the log (and the tables) must show right after."""

    def __init__(self, rule: str, expect: Callable[[list[str], Runtime, int], bool]) -> None:
        self.rule, self.expect = rule, expect

    @property
    def step(self) -> str:
        return self.rule.split(":")[0]


def _chunks(types: list[str]) -> int:
    return types.count("chunk_applied")


def _applied(rt: Runtime, ticket: int) -> set[int]:
    """The chunks the log shows applied (side by side, not always the first n)."""
    view = rt.view(ticket)
    assert view is not None
    return {c.chunk for c in view.outcomes}


def _staged_chunks(rt: Runtime, ticket: int) -> int:
    """Chunks the log shows staged while the file was still read."""
    view = rt.view(ticket)
    assert view is not None
    return view.staging.chunks if view.staging is not None else 0


def _cut_at(chunk: int, committed: bool, rows: Callable[[Runtime, int], int]) -> Callable[[list[str], Runtime, int], bool]:
    """A kill at `chunk`: it is applied or not as `committed` says; two chunks go side by side
    (the scaled default), so the one beside it, before or after, may or may not be; every applied
    chunk's rows (200 a chunk) are in `rows`, no more."""
    def expect(types: list[str], rt: Runtime, ticket: int) -> bool:
        applied = _applied(rt, ticket)
        return (
            set(range(chunk - 1)) <= applied and (chunk in applied) == committed
            and len(applied) <= chunk + 2 and rows(rt, ticket) == 200 * len(applied)
        )

    return expect


def _records(rt: Runtime, ticket: int) -> int:
    return len(ticket_records(rt, ticket))


# Each chain kills one worker per point, in order, on one import; each successor starts with the
# next rule armed and resumes the import from the log. Together they cover every crash point.
CHAINS = {
    "partial": [
        # mid-parse: two chunks staged on disk, nothing in the log yet
        Kill("parse_file:2:staged:kill", lambda t, rt, tk: t == ["import_requested", "file_stored"]),
        # the outbox gap after parsing: FileParsed committed, apply_chunk 0 never enqueued
        Kill("parse_file:*:after_commit:kill", lambda t, rt, tk: t[-1] == "file_parsed"),
        # mid-chunk: chunk 2's record writes and ChunkApplied sit in an open transaction
        Kill("apply_chunk:2:before_commit:kill", _cut_at(2, False, _records)),
        # the outbox gap after a chunk: committed, chunk 5 not enqueued, chunk 4's message not acked
        Kill("apply_chunk:4:after_commit:kill", _cut_at(4, True, _records)),
        # committed and chunk 7 enqueued, chunk 6's message not acked: it is delivered again
        Kill("apply_chunk:6:after_drive:kill", lambda t, rt, tk: 6 in _applied(rt, tk) and 7 <= _chunks(t) <= 9),
    ],
    "atomic": [
        # mid-parse of an atomic import, its first chunks applied (to staging) while the file is read
        Kill("parse_file:3:announced:kill", lambda t, rt, tk: "file_parsed" not in t and _staged_chunks(rt, tk) >= 3
             and staged_count(rt, tk) == 200 * len(_applied(rt, tk)) and not ticket_records(rt, tk)),
        # mid-chunk of an atomic import: its rows go to staging, never to the dataset
        Kill("apply_chunk:3:before_commit:kill", lambda t, rt, tk: _cut_at(3, False, staged_count)(t, rt, tk)
             and not ticket_records(rt, tk)),
        # mid-finalize: staging merged into the dataset inside an open transaction
        Kill("finalize:*:before_commit:kill", lambda t, rt, tk: _chunks(t) == 10 and t[-1] == "chunk_applied"
             and staged_count(rt, tk) == ROWS and not ticket_records(rt, tk)),
        # finalized: ImportCompleted committed, the callback not enqueued yet
        Kill("finalize:*:after_commit:kill", lambda t, rt, tk: t[-1] == "import_completed"
             and len(ticket_records(rt, tk)) == ROWS and staged_count(rt, tk) == 0),
    ],
}


@pytest.mark.parametrize("policy", list(CHAINS))
def test_kill_9_at_every_point_then_the_next_worker_finishes_every_row_exactly_once(scaled: Scaled, policy: str) -> None:
    assert scaled.settings.resolved_apply_parallel == 2  # chunks applied side by side, killed and resumed
    assert scaled.settings.resolved_parse_overlap  # atomic: chunks applied while the file is read
    with receiver() as hooks:
        ticket = rows = None
        for kill in CHAINS[policy]:
            worker = scaled.worker(fault=kill.rule)  # resumes the import from the log as it starts
            if ticket is None:
                ticket, rows = scaled.submit(ROWS, policy=policy, callback_url=hooks.url)
            assert worker.wait(60) == -signal.SIGKILL, f"{kill.rule}: {worker.tail()}"
            types = types_of(scaled.rt, ticket)
            assert kill.expect(types, scaled.rt, ticket), (kill.rule, types)
            check_log(scaled.rt, ticket)
            assert not hooks.posts
            # The dead worker's unacknowledged messages come back (dramatiq does so once its
            # heartbeat is stale); the step it was running when it died is among them.
            unacked = requeue_unacked(scaled.settings.redis_url, scaled.settings.redis_namespace)
            assert any(actor == kill.step for actor, _ in unacked), (kill.rule, unacked)
        assert ticket is not None and rows is not None
        last = scaled.worker()
        view = wait_for(scaled.rt, ticket, settled, "the import to settle", alive=last.problem)
        check_exactly_once(scaled.rt, ticket, rows)
        assert view.webhook.delivered_at is not None and len(hooks.posts) == 1, hooks.posts
        assert types_of(scaled.rt, ticket).count("webhook_delivered") == 1


def test_sigterm_mid_chunk_stops_the_worker_cleanly_and_nothing_is_lost(scaled: Scaled) -> None:
    """The signal lands while chunk 3's transaction is open: the step finishes, the worker exits 0."""
    first = scaled.worker(fault="apply_chunk:3:before_commit:term")
    ticket, rows = scaled.submit(ROWS)
    assert first.wait(45) == 0, first.tail()
    assert "stopping" in first.tail()
    types = types_of(scaled.rt, ticket)
    assert _chunks(types) >= 4, types  # chunk 3, in flight at the signal, was committed
    check_log(scaled.rt, ticket)

    second = scaled.worker()
    wait_for(scaled.rt, ticket, lambda v: v.terminal, "the import to finish", alive=second.problem)
    check_exactly_once(scaled.rt, ticket, rows)


@pytest.mark.parametrize("resumed", ["periodically", "at-start"])
def test_redis_restarted_mid_import_loses_its_queues_and_resume_finishes(
    pg_schema_url: str, tmp_path: Path, resumed: str
) -> None:
    with on_private_redis(tmp_path, pg_schema_url, stall_seconds=1, resume_interval_seconds=0.3) as (redis, cluster):
        # "at-start": the worker dies at chunk 3 while Redis restarts; a new worker resumes at start.
        fault = "apply_chunk:3:before_commit:kill" if resumed == "at-start" else None
        first = cluster.worker(fault=fault)
        ticket, rows = cluster.submit(3000)
        if resumed == "at-start":
            assert first.wait(60) == -signal.SIGKILL
        else:
            wait_for(cluster.rt, ticket, lambda v: v.chunks_applied >= 3, "three chunks", alive=first.problem)
        redis.kill()
        redis.start()  # empty: every queued and unacknowledged message is gone
        worker = cluster.worker() if resumed == "at-start" else first
        view = wait_for(cluster.rt, ticket, lambda v: v.terminal, "the import to finish", timeout=90, alive=worker.problem)
        assert view.state == "completed"
        check_exactly_once(cluster.rt, ticket, rows)


def test_redis_restarted_empty_mid_import_is_noticed_and_the_import_moves_again_within_30s(pg_schema_url: str, tmp_path: Path) -> None:
    """Default stall timeout (300 s): only the broker epoch can re-drive the ticket this fast."""
    with on_private_redis(tmp_path, pg_schema_url, chunk_size=100) as (redis, cluster):
        assert cluster.settings.stall_seconds == 300
        worker = cluster.worker()
        ticket, rows = cluster.submit(4000)  # 40 chunks
        wait_for(cluster.rt, ticket, lambda v: v.chunks_applied >= 3, "three chunks", alive=worker.problem)
        redis.kill()
        redis.start()  # empty: every queued and unacknowledged message is gone
        back = time.monotonic()
        before = check_log(cluster.rt, ticket).chunks_applied
        # Chunks in flight at the kill may still commit; progress past them needs a re-drive.
        view = wait_for(cluster.rt, ticket, lambda v: v.terminal or v.chunks_applied > before + 3,
                        "progress after Redis came back", timeout=30, alive=worker.problem)
        worker.wait_logged("the broker came back empty: re-driving every unfinished ticket", timeout=30 - (time.monotonic() - back))
        assert time.monotonic() - back < 30, time.monotonic() - back
        view = wait_for(cluster.rt, ticket, lambda v: v.terminal, "the import to finish", timeout=120, alive=worker.problem)
        assert view.state == "completed"
        check_exactly_once(cluster.rt, ticket, rows)


def test_database_connection_killed_mid_chunk_rolls_back_and_the_retry_lands_rows_once(scaled: Scaled) -> None:
    """pg_terminate_backend on the chunk's own session before it commits: rollback, retry, once."""
    assert scaled.rt.engine.pool._pre_ping  # type: ignore[attr-defined]
    worker = scaled.worker(fault="apply_chunk:2:before_commit:pgkill")
    ticket, rows = scaled.submit(ROWS)
    wait_for(scaled.rt, ticket, lambda v: v.terminal, "the import to finish", alive=worker.problem)
    check_exactly_once(scaled.rt, ticket, rows)
    log = worker.tail(20_000)
    assert "step apply_chunk raised OperationalError (attempt 1); retrying" in log, log


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_two_workers_racing_for_the_same_chunk_one_applies_the_other_is_a_no_op(
    db: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runtimes (two workers) read the same view, then both try to apply chunk 3."""
    url = str(request.getfixturevalue("pg_schema_url")) if db == "postgres" else f"sqlite:///{tmp_path / 'race.db'}"
    cluster = Scaled(tmp_path, url, "", "unused")  # in-process brokers nobody consumes
    other = make_runtime(cluster.settings, engine=make_engine(url))
    try:
        ticket, rows = cluster.submit(ROWS)
        parse_file.run(cluster.rt, ticket)
        for n in range(3):
            apply_chunk.run(cluster.rt, ticket, n)
        # Both have read the log (chunk 3 is due) before either writes anything.
        barrier = threading.Barrier(2, timeout=30)
        for rt in (cluster.rt, other):
            rt.ticket = lambda t, real=rt.ticket: (barrier.wait(), real(t))[1]  # type: ignore[method-assign]
        errors: list[BaseException] = []
        writes: list[int] = []
        write = apply_chunk.records.write

        def counting_write(conn: Any, dataset: int, t: int, *args: Any, **kw: Any) -> None:
            writes.append(t)
            write(conn, dataset, t, *args, **kw)

        monkeypatch.setattr(apply_chunk.records, "write", counting_write)

        def work(rt: Runtime) -> None:
            try:
                from actors.retry import retry_conflicts

                retry_conflicts(lambda: apply_chunk.run(rt, ticket, 3))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(rt,)) for rt in (cluster.rt, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        # Both read the log with chunk 3 due; the one that took the dataset's write lock second
        # read it again there, found the chunk applied, and wrote nothing.
        assert writes == [ticket]
        monkeypatch.undo()
        types = types_of(cluster.rt, ticket)
        assert _chunks(types) == 4, types
        assert len(ticket_records(cluster.rt, ticket)) == 800
        del cluster.rt.ticket  # back to the method
        for n in range(4, 10):
            apply_chunk.run(cluster.rt, ticket, n)
        from actors import finalize

        finalize.run(cluster.rt, ticket)
        check_exactly_once(cluster.rt, ticket, rows)
    finally:
        other.close()
        cluster.close()


@pytest.mark.parametrize("rule", [
    "parse_file:1:staged:always",
    "parse_file:3:announced:always",  # atomic: chunks applied to staging while the file was read, then rolled back
    "apply_chunk:1:before_commit:always",
    "finalize:*:before_commit:always",
])
def test_a_poison_step_fails_the_ticket_after_bounded_retries_and_one_webhook_goes_out(scaled: Scaled, rule: str) -> None:
    step = rule.split(":")[0]
    policies = {"staged": ["partial"], "announced": ["atomic"]}[rule.split(":")[2]] if step == "parse_file" else ["partial", "atomic"]
    with receiver() as hooks:
        worker = scaled.worker(fault=rule)
        tickets = [scaled.submit(ROWS, policy=p, callback_url=hooks.url)[0] for p in policies]
        try:
            _check_poisoned(scaled, step, tickets, policies, hooks, worker)
        except AssertionError as exc:  # say what the worker and the logs saw
            logs = {t: types_of(scaled.rt, t) for t in tickets}
            raise AssertionError(f"{exc}\nevents: {logs}\nposts: {len(hooks.posts)}\n--- worker log\n{worker.tail(6000)}") from exc


def _check_poisoned(scaled: Scaled, step: str, tickets: list[int], policies: list[str], hooks: Any, worker: Any) -> None:
    attempts = scaled.settings.max_retries + 1
    for ticket, policy in zip(tickets, policies, strict=True):
        view = wait_for(scaled.rt, ticket, settled, "the ticket to fail and its callback to settle", alive=worker.problem)
        assert view.state == "failed"
        assert (view.reason or "").startswith(f"internal error in step {step} after {attempts} attempts: FaultInjected"), view.reason
        assert view.webhook.delivered_at is not None and view.webhook.attempts == 1, view.webhook
        types = types_of(scaled.rt, ticket)
        assert types.count("import_failed") == 1 and types.count("webhook_delivered") == 1, types
        check_log(scaled.rt, ticket)
        if policy == "atomic":  # nothing reached the dataset; whatever was staged is rolled back
            assert not ticket_records(scaled.rt, ticket)
            assert view.rolled_back == view.created and (step == "finalize" or staged_count(scaled.rt, ticket) == 0)
    # Bounded: nothing is left queued, delayed or in flight; no step will run again.
    wait_drained(scaled.settings.redis_url, scaled.settings.redis_namespace, alive=worker.problem)
    assert len(hooks.posts) == len(tickets)
    assert "gave up after" in worker.tail(100_000)


def test_a_late_duplicate_of_a_failed_step_leaves_the_callback_alone(tmp_path: Path) -> None:
    """Two copies of a poison step race; the second gives up after the first ended the ticket. It
    must neither abandon the callback nor resend anything (it used to do both, and loop)."""
    cluster = Scaled(tmp_path, f"sqlite:///{tmp_path / 'late.db'}", "", "unused")
    sent: list[Any] = []
    cluster.rt.send = lambda ticket, step: sent.append(step)  # type: ignore[method-assign]
    try:
        ticket, _ = cluster.submit(10, callback_url="http://127.0.0.1:9/hook")
        give_up(cluster.rt, ticket, "internal error in step parse_file after 4 attempts: boom", PARSE)
        assert types_of(cluster.rt, ticket)[-1] == "import_failed" and sent[-1] == Step(WEBHOOK)
        sent.clear()
        give_up(cluster.rt, ticket, "internal error in step parse_file after 4 attempts: boom", PARSE)
        assert types_of(cluster.rt, ticket)[-1] == "import_failed" and not sent
        view = check_log(cluster.rt, ticket)
        assert not view.webhook.abandoned
    finally:
        cluster.close()


def test_while_redis_is_down_a_served_api_answers_every_door_without_a_5xx(pg_schema_url: str, tmp_path: Path) -> None:
    """The outbox gap at the front door, over HTTP: a real `importer serve` (scaled: PostgreSQL +
    Redis) with its Redis killed. Every door accepts its submission (a 5xx would invite a duplicate),
    reads and /metrics answer, /ready says 503 naming the broker; once Redis is back a worker
    finishes every accepted import, each row once."""
    rows = contacts(ROWS)
    data = write_csv(tmp_path / "c.csv", rows).read_bytes()
    with on_private_redis(tmp_path, pg_schema_url) as (redis, cluster), serving_site() as site, \
            serving_importer(cluster.env(), tmp_path / "serve.log") as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        site.files["c.csv"] = data
        with write_tx(cluster.rt.engine) as conn:
            for name in ("by_url", "yesmail", "partner_sales", "rma", "transactions"):
                catalog.put_dataset(conn, cluster.tenant.id, name, parse_schema(CONTACTS_SCHEMA), now())
        c = cluster.creds
        native = {"Authorization": f"Bearer {c['native']['token']}"}
        admin = {"Authorization": f"Bearer {c['admin']['bearer_token']}"}
        tt = {"tenant": c["teamtracks"]["tenant"], "Ocp-Apim-Subscription-Key": c["teamtracks"]["subscription_key"],
              "Authorization": f"Bearer {c['teamtracks']['bearer_token']}"}
        th = f"touchpoint={c['thalamus']['touchpoint']}&token={c['thalamus']['token']}"
        batch = client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=admin).json()["batchId"]
        redis.kill()
        upload = {"files": {"file": ("c.csv", data, "text/csv")}}
        answers = {
            "native": client.post("/imports", data={"dataset": "contacts"}, headers=native, **upload),
            "native url": client.post("/imports", json={"dataset": "by_url", "uri": site.url("/files/c.csv")}, headers=native),
            "yesmail": client.post("/v2/reference-data/yesmail/records/file-import", json={"source": {"uri": site.url("/files/c.csv"), "headers": True}},
                                   headers={"Api-User": c["yesmail"]["api_user"], "Api-Key": c["yesmail"]["api_key"]}),
            "thalamus": client.post(f"/api/v4/import/file?name=down&type=25011&{th}", **upload),
            "teamtracks": client.post("/objectimport/rma", headers=tt, **upload),
            "admin": client.post(f"/api/adm/import/file?batchId={batch}", headers=admin, **upload),
        }
        refused = {door: (r.status_code, r.text[:300]) for door, r in answers.items() if not 200 <= r.status_code < 300}
        assert not refused, refused
        ticket = int(answers["native"].json()["id"])
        reads = {
            "status": client.get(f"/imports/{ticket}", headers=native),
            "results": client.get(f"/imports/{ticket}/results", headers=native),
            "metrics": client.get("/metrics"),
            "health": client.get("/health"),
        }
        assert {k: r.status_code for k, r in reads.items()} == dict.fromkeys(reads, 200), {k: r.text[:300] for k, r in reads.items()}
        assert reads["status"].json()["state"] == "accepted"
        assert "importer_broker_up 0.0" in reads["metrics"].text
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("error"), ready.text
        redis.start()
        assert client.get("/ready").status_code == 200
        worker = cluster.worker()
        with read_tx(cluster.rt.engine) as conn:
            accepted = [int(t) for t in conn.execute(sa.select(tickets.c.id)).scalars()]
        assert len(accepted) == len(answers), accepted
        for each in accepted:  # each door wrote its own dataset
            wait_for(cluster.rt, each, lambda v: v.terminal, f"ticket {each} to finish", timeout=120, alive=worker.problem)
            view = check_log(cluster.rt, each)
            assert (view.state, view.processed, view.created, view.unchanged) == ("completed", ROWS, ROWS, 0), view
        check_exactly_once(cluster.rt, ticket, rows)


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_two_deliveries_of_the_same_callback_at_once_post_it_once(db: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A worker starting re-drives every unfinished ticket, callbacks included, while another may
    be delivering one right now: the two copies must not both POST it."""
    from actors import deliver_webhook

    url = str(request.getfixturevalue("pg_schema_url")) if db == "postgres" else f"sqlite:///{tmp_path / 'hook.db'}"
    cluster = Scaled(tmp_path, url, "", "unused")
    try:
        with receiver() as hooks:
            hooks.hold = threading.Event()  # the receiver answers only once released (or after 3 s)
            ticket, _ = cluster.submit(5, callback_url=hooks.url)
            parse_file.run(cluster.rt, ticket)
            apply_chunk.run(cluster.rt, ticket, 0)
            from actors import finalize

            finalize.run(cluster.rt, ticket)
            threads = [threading.Thread(target=deliver_webhook.run, args=(cluster.rt, ticket)) for _ in range(2)]
            for t in threads:
                t.start()
            threads[1].join(5)  # the second copy returns at once (it used to POST too)
            hooks.hold.set()
            for t in threads:
                t.join(30)
            view = check_log(cluster.rt, ticket)
            assert len(hooks.posts) == 1, len(hooks.posts)
            assert view.webhook.attempts == 1 and view.webhook.delivered_at is not None
    finally:
        cluster.close()


def test_two_workers_parsing_the_same_file_at_once_both_end_cleanly(tmp_path: Path) -> None:
    """Duplicate parse messages (a worker starting re-drives a ticket another is parsing) write the
    same 100 chunk blobs at the same moment; neither may fail, and the file is parsed once."""
    from actors import finalize
    from actors.retry import retry_conflicts

    cluster = Scaled(tmp_path, f"sqlite:///{tmp_path / 'parse.db'}", "", "unused", chunk_size=20)
    other = make_runtime(cluster.settings)
    try:
        ticket, rows = cluster.submit(ROWS)
        gate = threading.Barrier(2, timeout=30)
        errors: list[BaseException] = []

        def parse(rt: Runtime) -> None:
            try:
                gate.wait()
                retry_conflicts(lambda: parse_file.run(rt, ticket))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=parse, args=(rt,)) for rt in (cluster.rt, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors  # it used to be FileNotFoundError: both renamed one shared temp file
        assert types_of(cluster.rt, ticket).count("file_parsed") == 1
        for n in range(ROWS // 20):
            apply_chunk.run(cluster.rt, ticket, n)
        finalize.run(cluster.rt, ticket)
        check_exactly_once(cluster.rt, ticket, rows)
    finally:
        other.close()
        cluster.close()
