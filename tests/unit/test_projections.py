"""Folds and the flow table from plain event lists (Given events, When folded, Then the view)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from events.flow import APPLY, FINALIZE, PARSE, REVERT, WEBHOOK, Step, next_step
from events.projections import ImportView, fold, iter_results
from events.types import (
    ChunkApplied,
    FileParsed,
    FileStored,
    ImportCanceled,
    ImportCompleted,
    ImportFailed,
    ImportRequested,
    ImportReverted,
    ImportSpec,
    RevertChunkApplied,
    RevertRequested,
    RolledBack,
    RowFailure,
    ThresholdExceeded,
    WebhookAbandoned,
    WebhookAttempted,
    WebhookDelivered,
    decode_event,
    encode_event,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(s: int) -> datetime:
    return T0 + timedelta(seconds=s)


def started(policy: str = "partial", callback: str | None = None) -> list[object]:
    spec = ImportSpec(dataset="contacts", policy=policy, callback_url=callback)  # type: ignore[arg-type]
    return [
        ImportRequested(at=at(0), tenant="acme", spec=spec, uuid="u-1"),
        FileStored(at=at(1), blob="sources/u-1", size=10, sha256="x", format="csv"),
    ]


def view_of(events: list[object]) -> ImportView:
    return fold(events, ImportView(ticket=1))  # type: ignore[arg-type]


def test_a_stored_upload_is_accepted_and_needs_parsing() -> None:
    v = view_of(started())
    assert v.state == "accepted" and v.percentage == 0
    assert next_step(v) == Step(PARSE)


def test_chunks_count_rows_and_drive_the_next_chunk_then_finalize() -> None:
    events = [*started(), FileParsed(at=at(2), total_rows=4, chunks=2)]
    assert next_step(view_of(events)) == Step(APPLY, 0)
    events.append(ChunkApplied(at=at(3), chunk=0, first=0, runs=(("c", 1), ("f", 1)), failures=(RowFailure(1, 3, "bad"),)))
    v = view_of(events)
    assert (v.state, v.created, v.failed, v.percentage) == ("processing", 1, 1, 50)
    assert next_step(v) == Step(APPLY, 1)
    events.append(ChunkApplied(at=at(4), chunk=1, first=2, runs=(("u", 1), ("n", 1))))
    v = view_of(events)
    assert next_step(v) == Step(FINALIZE)
    events.append(ImportCompleted(at=at(5)))
    v = view_of(events)
    assert (v.state, v.completed, v.processed, v.percentage, v.finished_at) == ("completed", 3, 4, 100, at(5))
    assert next_step(v) is None
    results = list(iter_results(v))
    assert [(r.index, r.outcome) for r in results] == [(0, "c"), (1, "f"), (2, "u"), (3, "n")]
    assert results[1].error == "bad" and results[1].line == 3


def test_threshold_exceeded_goes_to_finalize_and_atomic_rollback_is_reported() -> None:
    events = [
        *started("atomic"),
        FileParsed(at=at(2), total_rows=10, chunks=2),
        ChunkApplied(at=at(3), chunk=0, first=0, runs=(("c", 2), ("f", 2), ("s", 1))),
        ThresholdExceeded(at=at(3), failed=2, threshold="1"),
    ]
    v = view_of(events)
    assert v.threshold_exceeded and next_step(v) == Step(FINALIZE)
    assert v.staged_rows == 2
    events += [RolledBack(at=at(4), rows=2), ImportFailed(at=at(4), reason="error threshold exceeded", skipped=5)]
    v = view_of(events)
    assert (v.state, v.rolled_back, v.skipped, v.staged_rows) == ("failed", 2, 6, 0)
    assert next_step(v) is None


def test_a_canceled_atomic_import_still_owes_its_cleanup() -> None:
    events = [
        *started("atomic"),
        FileParsed(at=at(2), total_rows=10, chunks=2),
        ChunkApplied(at=at(3), chunk=0, first=0, runs=(("c", 5),)),
        ImportCanceled(at=at(4), skipped=5),
    ]
    v = view_of(events)
    assert v.state == "canceled" and next_step(v) == Step(FINALIZE)
    v = view_of([*events, RolledBack(at=at(5), rows=5)])
    assert next_step(v) is None and v.rolled_back == 5


def test_only_the_first_terminal_event_counts_and_state_never_goes_back() -> None:
    events = [*started(), FileParsed(at=at(2), total_rows=0, chunks=0), ImportCompleted(at=at(3)), ImportFailed(at=at(4), reason="late")]
    v = view_of(events)
    assert v.state == "completed" and v.reason is None and v.finished_at == at(3)


def test_a_terminal_ticket_with_a_callback_owes_a_webhook_until_delivered() -> None:
    events = [*started(callback="https://example.com/hook"), FileParsed(at=at(2), total_rows=0, chunks=0), ImportCompleted(at=at(3))]
    assert next_step(view_of(events)) == Step(WEBHOOK)
    events.append(WebhookAttempted(at=at(4), url="https://example.com/hook", attempt=1, webhook_id="w", status=503))
    assert next_step(view_of(events)) == Step(WEBHOOK)
    events.append(WebhookDelivered(at=at(5), attempt=2))
    assert next_step(view_of(events)) is None


def test_events_round_trip_and_old_payloads_still_fold() -> None:
    ev = ChunkApplied(at=at(3), chunk=0, first=0, runs=(("c", 2),), failures=(RowFailure(1, 3, "x"),))
    assert decode_event(encode_event(ev)) == ev
    # a stored payload from before optional fields existed (no 'failures', no 'skipped')
    old = b'{"type":"chunk_applied","at":"2026-01-01T00:00:03Z","chunk":0,"first":0,"runs":[["c",2]]}'
    assert decode_event(old).failures == ()
    old_done = b'{"type":"import_completed","at":"2026-01-01T00:00:05Z"}'
    assert decode_event(old_done) == ImportCompleted(at=at(5))
    assert msgspec.json.decode(encode_event(ev))["type"] == "chunk_applied"


def test_chunks_staged_as_stored_folds_into_chunks_applied_before_the_file_is_parsed() -> None:
    """The stored shape of chunks_staged (kept as a sample: a tag or field type never changes)."""
    staged = [
        decode_event(b'{"type":"chunks_staged","at":"2026-01-01T00:00:02Z","chunks":1,"columns":["email","age"],"parallel":2,"after":[-1]}'),
        decode_event(b'{"type":"chunks_staged","at":"2026-01-01T00:00:03Z","chunks":3,"columns":["email","age"],"parallel":2,"after":[-1,0]}'),
    ]
    v = view_of([*started("atomic"), *staged, ChunkApplied(at=at(4), chunk=0, first=0, runs=(("c", 10),))])
    assert v.staging is not None and (v.staging.chunks, v.staging.after, v.staging.columns) == (3, (-1, -1, 0), ("email", "age"))
    assert v.state == "processing" and v.parsed is None and v.total_rows is None and v.percentage == 0
    assert (v.created, v.rows_seen, v.staged_rows) == (10, 10, 10)
    assert next_step(v) == Step(PARSE)  # the file is still read
    assert msgspec.json.decode(encode_event(staged[0]))["type"] == "chunks_staged"


def test_failed_existing_rows_are_counted_and_old_logs_fold_without_them() -> None:
    req = ImportRequested(at=at(0), tenant="t", spec=ImportSpec(dataset="d"), uuid="u")
    new = ChunkApplied(
        at=at(3), chunk=0, first=0, runs=(("c", 1), ("f", 3)),
        failures=(RowFailure(1, 3, "x"), RowFailure(2, 4, "y"), RowFailure(3, 5, "z")), failed_existing=(1, 3),
    )
    assert decode_event(encode_event(new)) == new
    view = view_of([req, new])
    assert (view.failed, view.failed_existing) == (3, 2)
    # a log written before failed_existing existed: every failure counts as not naming a record
    old = decode_event(b'{"type":"chunk_applied","at":"2026-01-01T00:00:03Z","chunk":0,"first":0,"runs":[["f",2]]}')
    assert isinstance(old, ChunkApplied) and old.failed_existing == ()
    assert (view_of([req, old]).failed, view_of([req, old]).failed_existing) == (2, 0)
    refused = decode_event(b'{"type":"file_refused","at":"2026-01-01T00:00:04Z","reason":"kept out"}')
    assert view_of([req, new, refused]) == view_of([req, new])  # in the log for operators; changes no view
    abandoned = decode_event(b'{"type":"webhook_abandoned","at":"2026-01-01T00:00:05Z","attempts":8}')
    assert isinstance(abandoned, WebhookAbandoned) and abandoned.reason is None


def test_a_revert_folds_chunk_by_chunk_to_reverted_and_a_log_without_one_has_none() -> None:
    events = [*started(), FileParsed(at=at(2), total_rows=3, chunks=1), ChunkApplied(at=at(3), chunk=0, first=0, runs=(("c", 2), ("u", 1)))]
    events.append(ImportCompleted(at=at(4)))
    assert view_of(events).revert is None  # an old log (or an import never reverted) folds as before
    events.append(RevertRequested(at=at(5), force=True))
    v = view_of(events)
    assert (v.state, v.terminal, v.revert is not None and v.revert.force) == ("completed", True, True)
    assert next_step(v) == Step(REVERT, 0)
    events.append(RevertChunkApplied(at=at(6), chunk=0, deleted=2, restored=0, conflicts=0, last_key="k2"))
    assert next_step(view_of(events)) == Step(REVERT, 1)
    events += [RevertChunkApplied(at=at(7), chunk=1, deleted=0, restored=1, conflicts=1, last_key="k4"), ImportReverted(at=at(7))]
    v = view_of(events)
    assert v.state == "reverted" and v.revert is not None
    assert (v.revert.deleted, v.revert.restored, v.revert.conflicts, v.revert.chunks, v.revert.done) == (2, 1, 1, 2, True)
    assert (v.created, v.updated, v.staged_rows, v.percentage) == (2, 1, 0, 100)
    assert next_step(v) is None
    assert all(decode_event(encode_event(e)) == e for e in events[-4:])  # type: ignore[arg-type]
