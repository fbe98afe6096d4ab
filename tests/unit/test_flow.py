"""The flow table: Given a ticket's view, When next_step reads it, Then the one step it needs (or none)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from events.flow import (
    APPLY,
    DOWNLOAD,
    FINALIZE,
    NEXT,
    PARSE,
    REVERT,
    WEBHOOK,
    Step,
    next_step,
    stage,
)
from events.projections import ImportView, RevertView, WebhookView
from events.types import FileParsed, FileStored, ImportSpec

AT = datetime(2026, 1, 1, tzinfo=UTC)
STORED = FileStored(at=AT, blob="sources/u", size=10, sha256="x", format="csv")
HOOK = "https://example.com/hook"


def view(spec: ImportSpec | None = ImportSpec(dataset="contacts"), **fields: object) -> ImportView:
    """A view as the fold would leave it, with only the fields a test is about."""
    return ImportView(ticket=1, spec=spec, **fields)  # type: ignore[arg-type]


def parsed(chunks: int) -> FileParsed:
    return FileParsed(at=AT, total_rows=chunks * 10, chunks=chunks)


def test_every_stage_before_the_end_has_exactly_one_next_step() -> None:
    assert NEXT == {"requested": DOWNLOAD, "stored": PARSE, "parsed": APPLY, "applied": FINALIZE, "reverting": REVERT}


@pytest.mark.parametrize(
    ("given", "expected_stage"),
    [
        (view(), "requested"),
        (view(file=STORED), "stored"),
        (view(file=STORED, parsed=parsed(3), chunks_applied=2), "parsed"),
        (view(file=STORED, parsed=parsed(3), chunks_applied=3), "applied"),
        (view(file=STORED, parsed=parsed(0)), "applied"),  # an empty file has nothing to apply
        (view(file=STORED, parsed=parsed(3), chunks_applied=1, threshold_exceeded=True), "applied"),
    ],
)
def test_stage_follows_the_log(given: ImportView, expected_stage: str) -> None:
    assert stage(given) == expected_stage


def test_a_url_source_without_its_file_needs_the_download() -> None:
    given = view(ImportSpec(dataset="contacts", source_uri="https://files.example.com/a.csv"))
    assert next_step(given) == Step(DOWNLOAD)


def test_an_upload_without_its_file_owes_nothing() -> None:
    # Given an upload, whose file is stored with the request: a log without FileStored is no work.
    assert next_step(view()) is None


def test_a_view_without_a_request_owes_nothing() -> None:
    assert next_step(view(spec=None, file=STORED)) is None


def test_the_next_chunk_is_the_first_not_applied() -> None:
    assert next_step(view(file=STORED)) == Step(PARSE)
    assert next_step(view(file=STORED, parsed=parsed(5), chunks_applied=3)) == Step(APPLY, 3)
    assert next_step(view(file=STORED, parsed=parsed(5), chunks_applied=5)) == Step(FINALIZE)


def test_a_terminal_atomic_ticket_owes_the_cleanup_of_its_staged_rows_before_its_webhook() -> None:
    spec = ImportSpec(dataset="contacts", policy="atomic", callback_url=HOOK)
    failed = view(spec, state="failed", file=STORED, parsed=parsed(2), chunks_applied=1, created=4)
    assert failed.staged_rows == 4 and next_step(failed) == Step(FINALIZE)
    rolled_back = msgspec.structs.replace(failed, rolled_back=4)
    assert rolled_back.staged_rows == 0 and next_step(rolled_back) == Step(WEBHOOK)


@pytest.mark.parametrize(
    ("webhook", "expected"),
    [
        (WebhookView(), Step(WEBHOOK)),
        (WebhookView(attempts=3, last_status=503), Step(WEBHOOK)),
        (WebhookView(attempts=1, delivered_at=AT), None),
        (WebhookView(attempts=9, abandoned=True), None),
    ],
)
def test_a_terminal_ticket_owes_its_callback_until_delivered_or_abandoned(webhook: WebhookView, expected: Step | None) -> None:
    given = view(ImportSpec(dataset="contacts", callback_url=HOOK), state="completed", file=STORED, parsed=parsed(1), chunks_applied=1, webhook=webhook)
    assert next_step(given) == expected


def test_a_terminal_ticket_without_a_callback_owes_nothing() -> None:
    for state in ("completed", "failed", "canceled"):
        assert next_step(view(state=state, file=STORED)) is None


def test_a_revert_under_way_owes_its_next_chunk_before_the_callback_and_nothing_once_done() -> None:
    spec = ImportSpec(dataset="contacts", callback_url=HOOK)
    reverting = RevertView(requested_at=AT, chunks=2)
    given = view(spec, state="completed", file=STORED, parsed=parsed(1), chunks_applied=1, revert=reverting)
    assert next_step(given) == Step(REVERT, 2)
    done = view(spec, state="reverted", file=STORED, parsed=parsed(1), chunks_applied=1, created=5,
                revert=msgspec.structs.replace(reverting, done=True), webhook=WebhookView(delivered_at=AT))
    assert next_step(done) is None
