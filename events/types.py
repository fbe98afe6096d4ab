"""Event types: frozen, tagged msgspec Structs. A ticket's log is a sequence of these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Union, get_args

import msgspec

WriteMode = Literal["insert", "update", "replace", "ignore"]
CommitPolicy = Literal["atomic", "partial"]
Outcome = Literal["c", "u", "n", "i", "f", "s"]  # created updated unchanged ignored failed skipped
RevertPhase = Literal["images", "created"]  # put back what the import replaced, then delete what it created
OUTCOME_NAMES: dict[str, str] = {
    "c": "created", "u": "updated", "n": "unchanged", "i": "ignored", "f": "failed", "s": "skipped",
}  # the one code -> name table every renderer and metric uses


class ImportSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the caller asked for, in the engine's terms (the one internal command's payload)."""

    dataset: str
    mode: WriteMode = "update"
    policy: CommitPolicy = "partial"
    threshold: int | None = None  # failed rows tolerated; None = no check
    threshold_percent: float | None = None  # failed share tolerated, in percent
    headers: bool = True
    mappings: dict[str, int] | None = None  # field -> 0-based column index
    separator: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    source_uri: str | None = None  # redacted: credentials never enter the log
    filename: str | None = None
    callback_url: str | None = None
    callback_ref: str | None = None
    dialect: str = "native"
    name: str | None = None
    extra: dict[str, str] = {}
    dry_run: bool = False  # run every step and report every outcome, but write no record


class RowFailure(msgspec.Struct, frozen=True, array_like=True):
    """One failed row: its 0-based data-row index, its line in the file, and why."""

    index: int
    line: int
    message: str


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event; `at` is when it happened (UTC)."""

    at: datetime


class ImportRequested(Event, tag="import_requested", frozen=True):
    tenant: str
    spec: ImportSpec
    uuid: str


class DownloadAttempted(Event, tag="download_attempted", frozen=True):
    attempt: int
    error: str
    transient: bool


class FileStored(Event, tag="file_stored", frozen=True):
    blob: str
    size: int
    sha256: str
    format: str
    filename: str | None = None


class FileParsed(Event, tag="file_parsed", frozen=True):
    total_rows: int
    chunks: int
    header: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # dataset fields present in the source, in staged-cell order
    ignored_columns: tuple[str, ...] = ()
    format: str = "csv"
    separator: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    # Before-images are kept only for the records that existed before the import; a revert finds
    # the records it created by their ids (derived from the ticket's). False in logs written before.
    lean_images: bool = False
    # Chunks applied side by side (by any worker): chunk k may be applied once every chunk up to
    # after[k] has been (-1: at once). No two chunks that share a key are ever in flight together,
    # and at most `parallel` are. Empty: one after another, in file order (and in older logs).
    parallel: int = 1
    after: tuple[int, ...] = ()


class ChunksStaged(Event, tag="chunks_staged", frozen=True):
    """Chunks 0..chunks-1 are staged while the file is still being read (parse and apply overlap,
    for imports whose rows reach the dataset only at finalize). FileParsed follows with the whole
    file's numbers; `after` holds only the entries of the chunks this event adds (see FileParsed)."""

    chunks: int
    columns: tuple[str, ...] = ()
    parallel: int = 1
    after: tuple[int, ...] = ()


class ChunkApplied(Event, tag="chunk_applied", frozen=True):
    chunk: int
    first: int  # index of the chunk's first row
    runs: tuple[tuple[Outcome, int], ...]  # run-length outcomes, row by row
    failures: tuple[RowFailure, ...] = ()
    # Failed rows whose key could be read and named an existing record when the chunk was
    # applied (a failed update, for dialects that tell failed creates and updates apart).
    failed_existing: tuple[int, ...] = ()


class FileRefused(Event, tag="file_refused", frozen=True):
    """A later file sent for an import that already has its file: kept out, noted in the log."""

    reason: str
    filename: str | None = None
    size: int = 0
    sha256: str = ""


class ThresholdExceeded(Event, tag="threshold_exceeded", frozen=True):
    failed: int
    threshold: str  # as the caller gave it: "10" or "5%"


class RolledBack(Event, tag="rolled_back", frozen=True):
    rows: int


class ImportCompleted(Event, tag="import_completed", frozen=True):
    skipped: int = 0


class ImportFailed(Event, tag="import_failed", frozen=True):
    reason: str
    skipped: int = 0


class ImportCanceled(Event, tag="import_canceled", frozen=True):
    reason: str = "canceled by the caller"
    skipped: int = 0


class WebhookAttempted(Event, tag="webhook_attempted", frozen=True):
    url: str
    attempt: int
    webhook_id: str
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0


class WebhookDelivered(Event, tag="webhook_delivered", frozen=True):
    attempt: int


class WebhookAbandoned(Event, tag="webhook_abandoned", frozen=True):
    attempts: int
    reason: str | None = None  # set when no retry could help (the SSRF guard refused the target)


class WebhookRedeliveryRequested(Event, tag="webhook_redelivery_requested", frozen=True):
    by: str = "operator"


class FileRemoved(Event, tag="file_removed", frozen=True):
    """The stored file (and any staged chunks) deleted after the retention period; FileStored keeps its sha256."""

    blob: str


class RevertRequested(Event, tag="revert_requested", frozen=True):
    """The caller asked to undo a completed import; `force` also undoes records changed since."""

    force: bool = False


class RevertChunkApplied(Event, tag="revert_chunk_applied", frozen=True):
    """One chunk of the revert committed with its record changes; the next starts after `last_key`."""

    chunk: int
    deleted: int
    restored: int
    conflicts: int
    last_key: str | None = None
    # Where the next chunk goes on: the before-images (put back in key order), then the records
    # the import created (deleted in key order); `last_key` is the cursor within that phase.
    phase: RevertPhase = "images"


class ImportReverted(Event, tag="import_reverted", frozen=True):
    """Every before-image is put back (or counted a conflict): the import is undone."""


class RevertFailed(Event, tag="revert_failed", frozen=True):
    """A revert step failed for good; the chunks reverted so far stay, and asking again goes on
    from where it stopped."""

    reason: str


AnyEvent = (
    ImportRequested
    | DownloadAttempted
    | FileStored
    | FileParsed
    | ChunksStaged
    | ChunkApplied
    | FileRefused
    | ThresholdExceeded
    | RolledBack
    | ImportCompleted
    | ImportFailed
    | ImportCanceled
    | WebhookAttempted
    | WebhookDelivered
    | WebhookAbandoned
    | WebhookRedeliveryRequested
    | FileRemoved
    | RevertRequested
    | RevertChunkApplied
    | ImportReverted
    | RevertFailed
)

TERMINAL_TYPES = frozenset({"import_completed", "import_failed", "import_canceled"})

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


class _ChunkCounts(Event, tag="chunk_applied", frozen=True):
    """ChunkApplied read without its failures (msgspec skips the field: no message is allocated)."""

    chunk: int
    first: int
    runs: tuple[tuple[Outcome, int], ...]
    failed_existing: tuple[int, ...] = ()  # counted by the fold (failed updates), so read


class _Failures(msgspec.Struct):
    failures: tuple[RowFailure, ...] = ()


_counts_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_ChunkCounts if t is ChunkApplied else t for t in get_args(AnyEvent))]  # noqa: UP007 - built at run time
)
_failures_decoder = msgspec.json.Decoder(_Failures)


def encode_event(event: Event) -> bytes:
    """Serialise an event to its stored JSON form."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnyEvent:
    """Parse an event from its stored JSON form."""
    return _decoder.decode(data)


def decode_event_counts(data: bytes | str) -> AnyEvent:
    """Parse an event, leaving a ChunkApplied's row failures unread (failures=())."""
    event = _counts_decoder.decode(data)
    if isinstance(event, _ChunkCounts):
        return ChunkApplied(
            at=event.at, chunk=event.chunk, first=event.first, runs=event.runs, failed_existing=event.failed_existing
        )
    return event  # type: ignore[no-any-return]


def decode_failures(data: bytes | str) -> tuple[RowFailure, ...]:
    """Only the row failures of a stored ChunkApplied."""
    return _failures_decoder.decode(data).failures


def chunk_slot(kind: str, chunk: int | None) -> int | None:
    """The event's value in the log's unique (ticket, chunk) column: applied chunks count up from 0,
    reverted chunks down from -1, so each commits at most once."""
    if chunk is None:
        return None
    if kind == "chunk_applied":
        return chunk
    if kind == "revert_chunk_applied":
        return -1 - chunk
    return None


def event_type(event: Event) -> str:
    """The event's stable tag."""
    return str(type(event).__struct_config__.tag)
