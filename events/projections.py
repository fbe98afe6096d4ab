"""Projections: fold a ticket's events into an ImportView. Pure: no I/O, no clock.

Over 400 lines because the view, the one fold over every event type and the row listing that
reads the view's chunk outcomes are one contract; split, each half would need the other's internals.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Literal

import msgspec
from msgspec.structs import replace

from events.types import (
    AnyEvent,
    ChunkApplied,
    ChunksStaged,
    DownloadAttempted,
    FileParsed,
    FileRefused,
    FileRemoved,
    FileStored,
    ImportCanceled,
    ImportCompleted,
    ImportFailed,
    ImportRequested,
    ImportReverted,
    ImportSpec,
    Outcome,
    RevertChunkApplied,
    RevertFailed,
    RevertPhase,
    RevertRequested,
    RolledBack,
    RowFailure,
    ThresholdExceeded,
    WebhookAbandoned,
    WebhookAttempted,
    WebhookDelivered,
    WebhookRedeliveryRequested,
)

State = Literal["accepted", "processing", "completed", "failed", "canceled", "reverted"]


class Milestone(msgspec.Struct, frozen=True):
    """A step a caller may want to see in a timeline (dialects word them)."""

    kind: str  # requested | downloaded | stored | parsed | threshold | rolled_back | completed | failed | canceled
    at: datetime
    rows: int = 0
    message: str = ""


class ChunkOutcome(msgspec.Struct, frozen=True):
    """Per-row outcomes of one applied chunk, run-length encoded."""

    chunk: int
    first: int
    runs: tuple[tuple[Outcome, int], ...]
    failures: tuple[RowFailure, ...] | None  # None: only in the log (a cached view; see without_failures)
    at: datetime


FailureSource = Callable[[int], Sequence[RowFailure]]  # chunk number -> its row failures, from the log


class WebhookView(msgspec.Struct, frozen=True):
    """Where the completion callback stands."""

    attempts: int = 0
    round_attempts: int = 0  # attempts since the last (re)delivery request
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    abandoned: bool = False
    webhook_id: str | None = None


class RevertView(msgspec.Struct, frozen=True):
    """Where the undoing of a completed import stands (chunks committed so far, and their counts)."""

    requested_at: datetime
    force: bool = False
    chunks: int = 0
    deleted: int = 0
    restored: int = 0
    conflicts: int = 0
    last_key: str | None = None
    phase: RevertPhase = "images"
    done: bool = False
    failed: str | None = None  # why its last step failed for good (asking again goes on from here)


class ImportView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a caller can see about one import, derived from its log."""

    ticket: int
    seq: int = 0
    uuid: str = ""
    tenant: str = ""
    spec: ImportSpec | None = None
    state: State = "accepted"
    requested_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    file: FileStored | None = None
    file_removed: bool = False  # the file outlived its retention period and was deleted
    parsed: FileParsed | None = None
    staging: ChunksStaged | None = None  # chunks staged while the file is still read (all `after` entries so far)
    download_attempts: int = 0
    chunks_applied: int = 0  # how many chunks are applied (side by side, not always a prefix)
    chunks_ahead: tuple[int, ...] = ()  # applied chunks past the first one not applied yet, in order
    rows_seen: int = 0  # rows covered by applied chunks
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored: int = 0
    failed: int = 0
    failed_existing: int = 0  # failed rows whose key named an existing record (failed updates)
    skipped: int = 0
    rolled_back: int = 0
    threshold_exceeded: bool = False
    reason: str | None = None
    outcomes: tuple[ChunkOutcome, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    webhook: WebhookView = WebhookView()
    revert: RevertView | None = None

    @property
    def terminal(self) -> bool:
        """True once the import completed (and maybe was reverted since), failed or was canceled."""
        return self.state in ("completed", "failed", "canceled", "reverted")

    @property
    def reverting(self) -> bool:
        """A revert was asked for and is neither done nor stopped by a step that failed for good."""
        return self.revert is not None and not self.revert.done and self.revert.failed is None

    @property
    def chunks_done(self) -> int:
        """Chunks 0..n-1 are all applied (the first chunk not applied yet is n)."""
        return self.chunks_applied - len(self.chunks_ahead)

    def chunk_applied(self, chunk: int) -> bool:
        """True once the chunk's ChunkApplied is in the log."""
        return chunk < self.chunks_done or chunk in self.chunks_ahead

    @property
    def total_rows(self) -> int | None:
        """Data rows in the file, once parsed."""
        return self.parsed.total_rows if self.parsed else None

    @property
    def completed(self) -> int:
        """Rows that reached (or, atomically, would reach) the dataset or matched it."""
        return self.created + self.updated + self.unchanged

    @property
    def processed(self) -> int:
        """Rows with a final outcome."""
        return self.completed + self.failed + self.ignored + self.skipped

    @property
    def percentage(self) -> int:
        """Whole percent of the rows processed (100 once terminal)."""
        if self.terminal:
            return 100
        total = self.total_rows
        if not total:
            return 0
        return min(99, (self.rows_seen * 100) // total)

    @property
    def staged_rows(self) -> int:
        """Atomic imports: rows written to staging and neither merged nor rolled back yet."""
        if self.spec is None or self.spec.policy != "atomic":
            return 0
        if self.state in ("completed", "reverted") or self.rolled_back:
            return 0
        return self.created + self.updated


def fold(events: Iterable[AnyEvent], view: ImportView) -> ImportView:
    """Apply events in order to a view (start from ImportView(ticket=id) for a whole log)."""
    for ev in events:
        view = apply(view, ev)
    return view


def fold_stored(stored: Iterable[object], view: ImportView) -> ImportView:
    """Fold StoredEvent records (with seq), keeping the view's seq current."""
    for item in stored:
        view = replace(apply(view, item.event), seq=item.seq)  # type: ignore[attr-defined]
    return view


def apply(view: ImportView, ev: AnyEvent) -> ImportView:
    """The view after one event."""
    at = ev.at
    match ev:
        case ImportRequested(tenant=tenant, spec=spec, uuid=uuid):
            return replace(
                view,
                tenant=tenant,
                spec=spec,
                uuid=uuid,
                requested_at=at,
                updated_at=at,
                milestones=(*view.milestones, Milestone("requested", at)),
            )
        case DownloadAttempted():
            return replace(view, download_attempts=view.download_attempts + 1, updated_at=at)
        case FileStored():
            kind = "downloaded" if view.spec and view.spec.source_uri else "stored"
            return replace(
                view,
                file=ev,
                state=_forward(view.state, "processing") if kind == "downloaded" else view.state,
                updated_at=at,
                milestones=(*view.milestones, Milestone(kind, at)),
            )
        case FileParsed(total_rows=total):
            return replace(
                view,
                parsed=ev,
                state=_forward(view.state, "processing"),
                updated_at=at,
                milestones=(*view.milestones, Milestone("parsed", at, rows=total)),
            )
        case ChunksStaged():
            prior = view.staging.after if view.staging is not None else ()
            return replace(
                view, staging=replace(ev, after=prior + ev.after), state=_forward(view.state, "processing"), updated_at=at
            )
        case ChunkApplied():
            return _apply_chunk(view, ev)
        case FileRefused():
            return view  # a later file that was kept out: in the log for operators, no caller-visible change
        case ThresholdExceeded(failed=failed, threshold=limit):
            message = f"error threshold exceeded: {failed} failed rows, threshold {limit}"
            return replace(
                view,
                threshold_exceeded=True,
                reason=message,
                updated_at=at,
                milestones=(*view.milestones, Milestone("threshold", at, rows=failed, message=message)),
            )
        case RolledBack(rows=rows):
            return replace(
                view,
                rolled_back=rows,
                updated_at=at,
                milestones=(*view.milestones, Milestone("rolled_back", at, rows=rows)),
            )
        case ImportCompleted(skipped=skipped):
            return _finish(view, "completed", at, skipped, None)
        case ImportFailed(reason=reason, skipped=skipped):
            return _finish(view, "failed", at, skipped, reason)
        case ImportCanceled(reason=reason, skipped=skipped):
            return _finish(view, "canceled", at, skipped, reason)
        case WebhookAttempted():
            wh = view.webhook
            return replace(
                view,
                webhook=replace(
                    wh,
                    attempts=wh.attempts + 1,
                    round_attempts=wh.round_attempts + 1,
                    last_status=ev.status,
                    last_error=ev.error,
                    last_attempt_at=at,
                    webhook_id=ev.webhook_id,
                ),
            )
        case WebhookDelivered():
            return replace(view, webhook=replace(view.webhook, delivered_at=at, abandoned=False))
        case WebhookAbandoned():
            return replace(view, webhook=replace(view.webhook, abandoned=True))
        case FileRemoved():
            return replace(view, file_removed=True)
        case RevertRequested(force=force):
            if view.revert is not None and view.revert.failed is not None:  # asked again: go on from there
                return replace(view, revert=replace(view.revert, failed=None, force=force), updated_at=at)
            return replace(view, revert=RevertView(requested_at=at, force=force), updated_at=at)
        case RevertFailed(reason=reason) if view.revert is not None and not view.revert.done:
            return replace(view, revert=replace(view.revert, failed=reason), updated_at=at)
        case RevertChunkApplied() if view.revert is not None:
            r = view.revert
            return replace(
                view,
                revert=replace(
                    r, chunks=max(r.chunks, ev.chunk + 1), deleted=r.deleted + ev.deleted,
                    restored=r.restored + ev.restored, conflicts=r.conflicts + ev.conflicts, last_key=ev.last_key,
                    phase=ev.phase,
                ),
                updated_at=at,
            )
        case ImportReverted() if view.revert is not None:
            return replace(view, state="reverted", revert=replace(view.revert, done=True), updated_at=at)
        case WebhookRedeliveryRequested():
            return replace(
                view,
                webhook=replace(view.webhook, abandoned=False, delivered_at=None, round_attempts=0),
            )
    return view  # an event this version does not know changes nothing


def _forward(current: State, target: State) -> State:
    """States only move forward: accepted -> processing -> terminal."""
    order = {"accepted": 0, "processing": 1}
    if current in order and order[current] < order.get(target, 2):
        return target
    return current


def _apply_chunk(view: ImportView, ev: ChunkApplied) -> ImportView:
    if view.chunk_applied(ev.chunk):
        return view  # a chunk is applied once; a second record of it would count its rows twice
    counts = {"c": 0, "u": 0, "n": 0, "i": 0, "f": 0, "s": 0}
    rows = 0
    for outcome, n in ev.runs:
        counts[outcome] += n
        rows += n
    done, ahead = view.chunks_done, view.chunks_ahead
    if ev.chunk == done:  # the usual case: the next chunk in order, then any applied ahead of it
        done += 1
        while ahead and ahead[0] == done:
            ahead, done = ahead[1:], done + 1
    else:  # applied side by side, ahead of an earlier chunk still in flight
        ahead = tuple(sorted((*ahead, ev.chunk)))
    entry = ChunkOutcome(ev.chunk, ev.first, ev.runs, ev.failures, ev.at)
    outcomes = view.outcomes
    if not outcomes or outcomes[-1].chunk < ev.chunk:
        outcomes = (*outcomes, entry)
    else:  # kept in chunk order, which is row order
        at = bisect_left([c.chunk for c in outcomes], ev.chunk)
        outcomes = (*outcomes[:at], entry, *outcomes[at:])
    return replace(
        view,
        state=_forward(view.state, "processing"),
        chunks_applied=view.chunks_applied + 1,
        chunks_ahead=ahead,
        rows_seen=view.rows_seen + rows,
        created=view.created + counts["c"],
        updated=view.updated + counts["u"],
        unchanged=view.unchanged + counts["n"],
        ignored=view.ignored + counts["i"],
        failed=view.failed + counts["f"],
        failed_existing=view.failed_existing + len(ev.failed_existing),
        skipped=view.skipped + counts["s"],
        outcomes=outcomes,
        updated_at=ev.at,
    )


def _finish(view: ImportView, state: State, at: datetime, skipped: int, reason: str | None) -> ImportView:
    if view.terminal:
        return view  # one terminal event counts; a stray second one changes nothing
    return replace(
        view,
        state=state,
        finished_at=at,
        updated_at=at,
        skipped=view.skipped + skipped,
        reason=reason if reason is not None else view.reason,
        milestones=(*view.milestones, Milestone(state, at, message=reason or "")),
    )


class RowResult(msgspec.Struct, frozen=True):
    """One row's outcome, expanded from the run-length form."""

    index: int
    outcome: Outcome
    at: datetime
    line: int | None = None
    error: str | None = None


def without_failures(view: ImportView) -> ImportView:
    """The view with its row failures left in the log (failures=None where a chunk has any): what a
    cache keeps, so that many imports whose rows all failed do not hold every message in memory."""
    if all(c.failures is None or not _has_failed(c) for c in view.outcomes):
        return view
    kept = tuple(replace(c, failures=None) if c.failures is not None and _has_failed(c) else c for c in view.outcomes)
    return replace(view, outcomes=kept)


def _has_failed(chunk: ChunkOutcome) -> bool:
    return any(outcome == "f" for outcome, _ in chunk.runs)


def iter_results(
    view: ImportView, outcomes: frozenset[str] | None = None, failures: FailureSource | None = None
) -> Iterator[RowResult]:
    """Every row's outcome in index order, optionally only some outcomes. A chunk whose failures are
    only in the log (failures=None) reads them from `failures` when its failed rows are wanted.

    The rows stop at the first chunk not applied yet (listed_outcomes)."""
    for chunk in listed_outcomes(view):
        listed: Sequence[RowFailure] | None = chunk.failures
        if listed is None:
            if outcomes is not None and "f" not in outcomes:
                listed = ()
            elif failures is None:
                raise ValueError(f"ticket {view.ticket}: chunk {chunk.chunk}'s row failures are in the log; pass failures=")
            else:
                listed = failures(chunk.chunk)
        errors = {f.index: f for f in listed}
        index = chunk.first
        for outcome, n in chunk.runs:
            if outcomes is None or outcome in outcomes:
                for i in range(index, index + n):
                    failure = errors.get(i)
                    if failure is not None:
                        yield RowResult(i, outcome, chunk.at, failure.line, failure.message)
                    else:
                        yield RowResult(i, outcome, chunk.at)
            index += n


def listed_outcomes(view: ImportView) -> tuple[ChunkOutcome, ...]:
    """The chunks whose rows are listed: those before the first chunk not applied yet. A chunk
    applied side by side ahead of it is listed once the gap is filled, so a row's place in the list
    never changes (a caller paging a running import's results by offset misses and repeats nothing).
    Outcomes are kept in chunk order, so these are the first `chunks_done` (or fewer, in a view whose
    outcomes were cut to a page's)."""
    return view.outcomes[: view.chunks_done]
