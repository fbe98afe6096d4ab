"""Hypothesis drives random submit / deliver / redeliver / crash / lose / cancel / restart sequences
through the real steps and checks after every one: states only move forward, one terminal event,
each chunk once, and rows applied equal rows accepted."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from actors import faults
from actors.errors import StepFailed
from actors.pipeline import STEPS, give_up
from actors.resume import resume
from actors.retry import retry_conflicts
from actors.settings import load_settings
from app import service
from app.errors import Conflict
from app.tenants import create_tenant
from app.uploads import UploadedFile
from app.wiring import make_runtime
from events import catalog
from events.datasets import parse_schema
from events.db import write_tx
from events.flow import Step, next_step
from events.log import now
from events.types import ImportSpec
from tests.support import CONTACTS_SCHEMA, RANK, check_log, staged_count, ticket_records, write_csv

HEADER = ["email", "name", "age"]
CRASH_POINTS = ("staged", "before_commit", "after_commit", "after_drive")


class Submission(msgspec.Struct):
    """What one submit rule accepted."""

    rows: int
    valid: int
    policy: str
    threshold: int | None


class Pipeline(RuleBasedStateMachine):
    """A runtime whose messages go to a list the rules deliver, duplicate, crash or lose."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="importer-stateful-"))
        self.rt = make_runtime(load_settings(
            env={}, data_dir=str(self.tmp), chunk_size=3, database_url=f"sqlite:///{self.tmp / 'importer.db'}",
        ))
        self.pending: list[tuple[int, Step]] = []
        self.delivered: list[tuple[int, Step]] = []
        self.rt.send = lambda ticket, step: self.pending.append((ticket, step))  # type: ignore[method-assign]
        with write_tx(self.rt.engine) as conn:
            create_tenant(conn, "acme")
            tenant = catalog.tenant_by_name(conn, "acme")
            assert tenant is not None
            catalog.put_dataset(conn, tenant.id, "contacts", parse_schema(CONTACTS_SCHEMA), now())
        self.tenant = tenant
        self.accepted: dict[int, Submission] = {}
        self.rank: dict[int, int] = {}

    def _run(self, message: tuple[int, Step]) -> None:
        """What the actor wrapper does with one message (bar dramatiq's retries)."""
        ticket, step = message
        try:
            retry_conflicts(lambda: STEPS[step.actor](self.rt, ticket, step.chunk))
        except StepFailed as exc:
            give_up(self.rt, ticket, str(exc), step.actor)

    def _take(self, data: st.DataObject) -> tuple[int, Step]:
        return self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1), label="message"))

    @rule(
        target=tickets,
        n=st.integers(0, 10),
        bad=st.sets(st.integers(0, 9), max_size=4),
        policy=st.sampled_from(["partial", "atomic"]),
        threshold=st.sampled_from([None, None, 0, 1]),
    )
    def submit(self, n: int, bad: set[int], policy: str, threshold: int | None) -> int:
        number = len(self.accepted)
        rows: list[list[Any]] = [HEADER]
        for i in range(n):
            rows.append([f"s{number}r{i}@example.com", f"row {i}", "not-a-number" if i in bad else str(i)])
        path = write_csv(self.tmp / f"upload-{number}.csv", rows)
        upload = UploadedFile(path=path, filename=path.name, size=path.stat().st_size, sha256="0" * 64, content_type=None)
        spec = ImportSpec(dataset="contacts", policy=policy, threshold=threshold)  # type: ignore[arg-type]
        ticket, created = service.start_import(self.rt, self.tenant, spec, upload=upload)
        assert created
        self.accepted[ticket] = Submission(n, n - len([i for i in bad if i < n]), policy, threshold)
        return ticket

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """A worker takes any queued message (order is not guaranteed) and runs it."""
        message = self._take(data)
        self._run(message)
        self.delivered.append(message)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """At-least-once: a message already handled comes again."""
        self._run(data.draw(st.sampled_from(self.delivered), label="again"))

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), point=st.sampled_from(CRASH_POINTS))
    def crash(self, data: st.DataObject, point: str) -> None:
        """The worker dies at `point` of the step; its message is gone (restart re-drives)."""
        message = self._take(data)
        faults.arm(",".join(f"{step}:*:{point}:raise" for step in ("parse_file", "apply_chunk", "finalize")))
        try:
            self._run(message)
        except faults.FaultInjected:
            pass
        finally:
            faults.disarm()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        """Redis restarted: a queued message vanished."""
        self._take(data)

    @rule(ticket=tickets)
    def cancel(self, ticket: int) -> None:
        try:
            view = service.cancel_import(self.rt, self.tenant, ticket)
            assert view.state == "canceled"
        except Conflict:  # 409: it had already ended
            view = self.rt.view(ticket)
            assert view is not None and view.terminal

    @rule()
    def restart(self) -> None:
        """A worker starts: it re-drives every unfinished ticket from the log."""
        resume(self.rt)

    @invariant()
    def logs_and_tables_agree(self) -> None:
        for ticket, sub in self.accepted.items():
            view = check_log(self.rt, ticket)  # forward-only states, one terminal event, chunks once in order
            assert RANK[view.state] >= self.rank.get(ticket, 0)
            self.rank[ticket] = RANK[view.state]
            written = len(ticket_records(self.rt, ticket))
            if sub.policy == "partial":
                assert written == view.created  # every applied row is in the dataset, once
                assert staged_count(self.rt, ticket) == 0
            else:
                assert written == (view.created if view.state == "completed" else 0)
                assert staged_count(self.rt, ticket) == view.staged_rows

    def teardown(self) -> None:
        try:
            for _ in range(10_000):  # restart, then run every message until nothing is owed
                if not self.pending:
                    resume(self.rt)
                    if not self.pending:
                        break
                self._run(self.pending.pop(0))
            self.logs_and_tables_agree()
            for ticket, sub in self.accepted.items():
                view = check_log(self.rt, ticket)
                assert view.terminal and next_step(view) is None, view
                if view.total_rows is not None:
                    assert view.total_rows == sub.rows and view.processed == sub.rows  # each row has one outcome
                if view.state == "completed" and sub.threshold is None:
                    assert (view.created, view.failed) == (sub.valid, sub.rows - sub.valid)
                if view.state == "failed":
                    assert view.threshold_exceeded and sub.threshold is not None
        finally:
            self.rt.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            faults.disarm()


Pipeline.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_crashes_duplicates_and_cancels_never_lose_or_double_a_row = Pipeline.TestCase
