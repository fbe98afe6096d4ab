"""Yesmail wire shapes: the ticket, the async results (streamed), the dataset schema, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec

from app.dialects.streaming import joined
from events.catalog import DatasetRow
from events.decisions import threshold_label
from events.projections import FailureSource, ImportView, Milestone, iter_results

_encode = msgspec.json.Encoder().encode

ACCEPTED = "File import to target list accepted."
DOWNLOADED = "File downloaded."
RECEIVED = "File received."
IMPORTED = "File imported successfully."
NOT_WRITTEN = "no records were added or updated"


class YesmailEvent(msgspec.Struct):
    """One step of the ticket's history."""

    state: str
    message: str
    time: str


class YesmailRequestInfo(msgspec.Struct):
    """Who asked for the import, when, and at which URL."""

    id: str
    user: str | None
    time: str
    uri: str | None


class YesmailResponseInfo(msgspec.Struct):
    """Where the final status is posted, the caller's reference, and the results' location."""

    uri: str | None
    ref: str | None
    location: str


class YesmailTicket(msgspec.Struct):
    """GET /v2/tickets/{id} (and the 202 answer, and the callback body)."""

    id: str
    state: str
    message: str
    lastUpdate: str
    events: list[YesmailEvent]
    request: YesmailRequestInfo
    response: YesmailResponseInfo


class YesmailCounts(msgspec.Struct):
    """Record counts of the async results."""

    completed: int
    failed: int
    ignored: int
    total: int
    requested: int


class YesmailRowError(msgspec.Struct):
    """Why one record failed."""

    status: int
    message: str


class YesmailCompleted(msgspec.Struct):
    """A record that reached the dataset."""

    index: int
    time: str


class YesmailFailed(msgspec.Struct):
    """A record that failed."""

    index: int
    time: str
    error: YesmailRowError


class YesmailIgnored(msgspec.Struct):
    """A record left alone (importType ignore, already present)."""

    index: int


class YesmailAsyncResults(msgspec.Struct):
    """GET /v2/async-results/{id} (documented shape; the body itself is streamed)."""

    id: str
    lastUpdate: str
    counts: YesmailCounts
    completed: list[YesmailCompleted]
    failed: list[YesmailFailed]
    ignored: list[YesmailIgnored]


class YesmailField(msgspec.Struct):
    """One field of a dataset schema."""

    name: str
    type: str
    required: bool
    key: bool


class YesmailSchema(msgspec.Struct):
    """GET /v2/reference-data/{dataset}?view=schema."""

    name: str
    view: str
    fields: list[YesmailField]
    key: list[str]


class YesmailErrorBody(msgspec.Struct):
    """A request-level error: the same {status, message} object a failed record carries."""

    status: int
    message: str


class YesmailError(msgspec.Struct):
    """Every error answer: {"error": {"status", "message"}}."""

    error: YesmailErrorBody


def iso(at: datetime | None) -> str:
    """ISO 8601 UTC to the second, as the doc writes it: 2014-03-03T17:33:52Z."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticket_state(view: ImportView) -> str:
    """Yesmail knows accepted, processing, completed and failed; a canceled import failed, a reverted one completed."""
    return {"canceled": "failed", "reverted": "completed"}.get(view.state, view.state)


def _sentence(text: str) -> str:
    text = text.strip() or "File import failed"
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _event(view: ImportView, m: Milestone) -> YesmailEvent | None:
    time = iso(m.at)
    if m.kind == "requested":
        return YesmailEvent("accepted", ACCEPTED, time)
    if m.kind == "downloaded":
        return YesmailEvent("processing", DOWNLOADED, time)
    if m.kind == "stored":
        return YesmailEvent("processing", RECEIVED, time)
    if m.kind == "parsed":
        return YesmailEvent("processing", f"File pre-parsed, importing {m.rows} records.", time)
    if m.kind == "threshold":
        limit = threshold_label(view.spec) if view.spec else "?"
        return YesmailEvent(
            "processing",
            f"Error threshold exceeded: {m.rows} records failed, threshold {limit}.",
            time,
        )
    if m.kind == "completed":
        return YesmailEvent("completed", IMPORTED, time)
    if m.kind == "failed":
        return YesmailEvent("failed", _sentence(m.message), time)
    if m.kind == "canceled":
        atomic = view.spec is not None and view.spec.policy == "atomic"
        return YesmailEvent(
            "failed", f"File import canceled{'; ' + NOT_WRITTEN if atomic else ''}.", time
        )
    return None  # rolled_back: the failure's own message says that nothing was written


def render_ticket(view: ImportView, base: str) -> YesmailTicket:
    """The ticket, every event derived from the view's milestones."""
    spec = view.spec
    assert spec is not None
    events = [e for e in (_event(view, m) for m in view.milestones) if e is not None]
    extra = spec.extra
    return YesmailTicket(
        id=str(view.ticket),
        state=ticket_state(view),
        message=events[-1].message if events else ACCEPTED,
        lastUpdate=iso(view.updated_at),
        events=events,
        request=YesmailRequestInfo(
            id=view.uuid, user=extra.get("user"), time=iso(view.requested_at), uri=extra.get("uri")
        ),
        response=YesmailResponseInfo(
            uri=spec.callback_url,
            ref=spec.callback_ref,
            location=f"{base}/v2/async-results/{view.ticket}",
        ),
    )


def committed(view: ImportView) -> bool:
    """Whether the import's records are in the dataset: an atomic import only once it completed."""
    if view.spec is not None and view.spec.policy == "atomic":
        return view.state in ("completed", "reverted")
    return not view.rolled_back


def render_counts(view: ImportView) -> YesmailCounts:
    """completed + failed + ignored = total; requested = the file's records (skipped ones are the gap)."""
    done = view.completed if committed(view) else 0
    return YesmailCounts(
        completed=done,
        failed=view.failed,
        ignored=view.ignored,
        total=done + view.failed + view.ignored,
        requested=view.total_rows or 0,
    )


def render_results(view: ImportView, failures: FailureSource | None = None) -> Iterator[bytes]:
    """The async results JSON in pieces: entries are streamed, never held as one list (failed
    entries' messages are read from the log, a chunk at a time)."""
    head = _encode(
        {"id": str(view.ticket), "lastUpdate": iso(view.updated_at), "counts": render_counts(view)}
    )
    yield head[:-1] + b',"completed":['
    if committed(view):
        yield from joined(
            _encode(YesmailCompleted(r.index, iso(r.at)))
            for r in iter_results(view, frozenset({"c", "u", "n"}))
        )
    yield b'],"failed":['
    yield from joined(
        _encode(
            YesmailFailed(r.index, iso(r.at), YesmailRowError(400, r.error or "Invalid record."))
        )
        for r in iter_results(view, frozenset({"f"}), failures)
    )
    yield b'],"ignored":['
    yield from joined(
        _encode(YesmailIgnored(r.index)) for r in iter_results(view, frozenset({"i"}))
    )
    yield b"]}"


def render_schema(dataset: DatasetRow) -> YesmailSchema:
    """The dataset's fields, their types, and which of them identify a record."""
    key = list(dataset.schema.key)
    return YesmailSchema(
        name=dataset.name,
        view="schema",
        fields=[
            YesmailField(f.name, f.type, f.required, f.name in key) for f in dataset.schema.fields
        ],
        key=key,
    )


def error_body(status: int, message: str) -> YesmailError:
    """The error document for a status."""
    return YesmailError(YesmailErrorBody(status, message))


def ticket_json(view: ImportView, base: str) -> bytes:
    """The ticket as JSON bytes (the callback body)."""
    return _encode(render_ticket(view, base))
