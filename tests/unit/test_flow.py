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
    due_chunks,
    new_steps,
    next_step,
    stage,
    steps,
)
from events.projections import (
    ImportView,
    RevertView,
    WebhookView,
    apply,
    iter_results,
    listed_outcomes,
)
from events.types import (
    ChunkApplied,
    ChunksStaged,
    FileParsed,
    FileStored,
    ImportSpec,
    RevertFailed,
    RevertRequested,
)

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


# Side by side: FileParsed.after says which chunks each chunk waits for.
SIDE = FileParsed(at=AT, total_rows=60, chunks=6, parallel=3, after=(-1, -1, -1, 0, 1, 3))  # 4: the window


def _applied(*chunks: int) -> ImportView:
    """A view with these chunks' ChunkApplied folded in, in this order."""
    v = view(file=STORED, parsed=SIDE)
    for n in chunks:
        v = apply(v, ChunkApplied(at=AT, chunk=n, first=n * 10, runs=(("c", 10),)))
    return v


def test_side_by_side_every_chunk_whose_turn_came_is_due_and_no_more_than_parallel() -> None:
    assert due_chunks(_applied()) == [0, 1, 2]  # 3 waits for 0, and 3 are in flight at most
    assert due_chunks(_applied(1)) == [0, 2]  # applied ahead of 0: not due again
    assert due_chunks(_applied(1, 0)) == [2, 3, 4]
    assert due_chunks(_applied(1, 0, 3, 4)) == [2]  # 5 waits for every chunk up to 3, and 2 is not done
    assert due_chunks(_applied(1, 0, 3, 4, 2)) == [5]
    assert next_step(_applied(1, 0, 3, 4, 2, 5)) == Step(FINALIZE)
    assert steps(_applied(1)) == [Step(APPLY, 0), Step(APPLY, 2)]


def test_a_chunk_applied_sends_only_what_it_made_due() -> None:
    """Two workers finishing chunks 0 and 1 must not both send chunk 3."""
    assert new_steps(_applied(), _applied(0)) == [Step(APPLY, 3)]
    assert new_steps(_applied(0), _applied(0, 1)) == [Step(APPLY, 4)]  # not 3 again
    assert new_steps(_applied(), _applied(1)) == []  # nothing waits for 1 alone
    assert new_steps(_applied(1), _applied(1, 0)) == [Step(APPLY, 3), Step(APPLY, 4)]
    assert new_steps(_applied(1, 0, 2, 4), _applied(1, 0, 2, 4, 3)) == [Step(APPLY, 5)]
    assert new_steps(_applied(1, 0, 2, 4, 3), _applied(1, 0, 2, 4, 3, 5)) == [Step(FINALIZE)]


def test_one_after_another_without_after_as_before() -> None:
    one = FileParsed(at=AT, total_rows=30, chunks=3)
    v = view(file=STORED, parsed=one)
    assert due_chunks(v) == [0]
    v = apply(v, ChunkApplied(at=AT, chunk=0, first=0, runs=(("c", 10),)))
    assert due_chunks(v) == [1] and new_steps(view(file=STORED, parsed=one), v) == [Step(APPLY, 1)]


def test_chunks_staged_while_the_file_is_read_are_applied_meanwhile_and_finalize_waits_for_file_parsed() -> None:
    """Parse still owed (it reads on), the staged chunks due in their turn; nothing sent twice."""
    def staged(n: int, after: tuple[int, ...] = ()) -> ChunksStaged:
        return ChunksStaged(at=AT, chunks=n, columns=("email",), after=after)

    def chunk(k: int) -> ChunkApplied:
        return ChunkApplied(at=AT, chunk=k, first=10 * k, runs=(("c", 10),))

    start = view(file=STORED)
    one = apply(start, staged(1))
    assert stage(one) == "stored" and one.state == "processing"
    assert steps(one) == [Step(PARSE), Step(APPLY, 0)] and new_steps(start, one) == [Step(APPLY, 0)]
    applied = apply(one, chunk(0))
    assert steps(applied) == [Step(PARSE)] and new_steps(one, applied) == []  # caught up: waits for the parse
    two = apply(applied, staged(2))
    assert new_steps(applied, two) == [Step(APPLY, 1)]
    three = apply(two, staged(3))
    assert new_steps(two, three) == []  # chunk 1 is in flight: 2 waits for it
    done = apply(apply(three, chunk(1)), chunk(2))
    assert steps(done) == [Step(PARSE)]  # every staged chunk applied, the file not read to its end
    whole = apply(done, FileParsed(at=AT, total_rows=40, chunks=4, columns=("email",)))
    assert new_steps(done, whole) == [Step(APPLY, 3)]
    assert new_steps(whole, apply(whole, chunk(3))) == [Step(FINALIZE)]
    side = apply(apply(start, staged(2, (-1, -1))), staged(3, (0,)))  # side by side: `after` grows with each event
    assert side.staging is not None and side.staging.after == (-1, -1, 0)


def test_a_chunk_applied_out_of_order_is_counted_once_and_its_outcomes_kept_in_row_order() -> None:
    v = _applied(2, 0, 1)
    assert (v.chunks_applied, v.chunks_done, v.chunks_ahead, v.rows_seen, v.created) == (3, 3, (), 30, 30)
    assert [c.chunk for c in v.outcomes] == [0, 1, 2]
    again = apply(v, ChunkApplied(at=AT, chunk=1, first=10, runs=(("c", 10),)))
    assert again == v  # a second record of a chunk changes nothing
    ahead = _applied(4, 1)
    assert (ahead.chunks_done, ahead.chunks_ahead, [c.chunk for c in ahead.outcomes]) == (0, (1, 4), [1, 4])
    assert [r.index for r in iter_results(_applied(2, 0, 1))] == list(range(30))


def test_rows_of_a_chunk_applied_ahead_are_listed_once_the_gap_is_filled() -> None:
    """A caller paging a running import's results by offset never sees a row move."""
    assert list(iter_results(_applied(1))) == []  # chunk 0 still to come: nothing listed yet
    gap = _applied(0, 2)
    assert [r.index for r in iter_results(gap)] == list(range(10))
    assert [c.chunk for c in listed_outcomes(gap)] == [0] and gap.rows_seen == 20  # counted, not listed yet
    filled = apply(gap, ChunkApplied(at=AT, chunk=1, first=10, runs=(("u", 10),)))
    assert [(r.index, r.outcome) for r in iter_results(filled)][8:12] == [(8, "c"), (9, "c"), (10, "u"), (11, "u")]
    assert len(list(iter_results(filled))) == 30 and listed_outcomes(filled) == filled.outcomes


def test_a_revert_that_failed_for_good_is_owed_nothing_until_asked_again() -> None:
    done = view(state="completed", file=STORED, parsed=parsed(1), chunks_applied=1)
    stopped = apply(apply(done, RevertRequested(at=AT)), RevertFailed(at=AT, reason="internal error"))
    assert stopped.revert is not None and stopped.revert.failed == "internal error"
    assert next_step(stopped) is None
    again = apply(stopped, RevertRequested(at=AT, force=True))
    assert again.revert is not None and (again.revert.failed, again.revert.force) == (None, True)
    assert next_step(again) == Step(REVERT, 0)
