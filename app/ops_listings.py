"""What the operator commands read and print: timelines, history, failed callbacks, fold checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx
import msgspec
import sqlalchemy as sa
from msgspec.structs import replace
from rich.console import Console
from rich.table import Table

from events import catalog, catalog_models
from events import log as event_log
from events.db import read_tx
from events.projections import ImportView, apply, fold_stored, without_failures
from events.types import AnyEvent, ChunkApplied, event_type
from events.view_cache import ViewCache

Served = Callable[[int], dict[str, Any] | None]
PAGE = 500


def describe(ev: AnyEvent) -> str:
    """A short human summary of one event."""
    d = msgspec.to_builtins(ev)
    match event_type(ev):
        case "import_requested":
            s = d["spec"]
            return f"tenant {d['tenant']}, dataset {s['dataset']}, {s.get('mode', 'update')}/{s.get('policy', 'partial')}"
        case "file_stored":
            return f"{d['format']}, {d['size']} bytes, sha256 {d['sha256'][:12]}"
        case "file_parsed":
            return f"{d['total_rows']} rows in {d['chunks']} chunk(s)"
        case "chunks_staged":
            return f"{d['chunks']} chunk(s) staged so far, the file still being read"
        case "chunk_applied":
            assert isinstance(ev, ChunkApplied)
            runs = " ".join(f"{o}={n}" for o, n in ev.runs)
            return f"chunk {ev.chunk} from row {ev.first}: {runs}"
        case "webhook_attempted":
            return f"attempt {d['attempt']}: {d.get('status') or d.get('error')} in {d.get('duration_ms', 0)} ms"
    rest = {k: v for k, v in d.items() if k not in ("type", "at")}
    return ", ".join(f"{k}={v}" for k, v in rest.items())


def _console() -> Console:
    """A terminal's own width; piped output gets room for every column."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="milliseconds") if at else None


def event_table(rows: Sequence[tuple[int, AnyEvent, str]], header: bool = True) -> None:
    """Print events as a table (fixed widths, so --follow batches line up)."""
    table = Table(show_header=header, box=None, pad_edge=False)
    for name, width in (("seq", 5), ("at", 24), ("event", 28), ("details", 60)):
        table.add_column(name, width=width, no_wrap=name != "details")
    for seq, ev, text in rows:
        table.add_row(str(seq), _iso(ev.at), event_type(ev), text)
    _console().print(table)


def timeline(ticket: int, stored: Sequence[event_log.StoredEvent]) -> list[dict[str, Any]]:
    """Fold the log one event at a time: the state and counts after each."""
    view = ImportView(ticket=ticket)
    steps = []
    for s in stored:
        view = replace(apply(view, s.event), seq=s.seq)
        steps.append({
            "seq": s.seq, "at": _iso(s.event.at), "event": event_type(s.event), "state": view.state,
            "percentage": view.percentage, "total": view.total_rows, "seen": view.rows_seen,
            "created": view.created, "updated": view.updated, "unchanged": view.unchanged, "ignored": view.ignored,
            "failed": view.failed, "skipped": view.skipped, "rolled_back": view.rolled_back,
            "webhook_attempts": view.webhook.attempts, "details": describe(s.event),
        })
    return steps


def timeline_table(ticket: int, steps: list[dict[str, Any]]) -> None:
    """Print a replay timeline."""
    cols = {"seq": "seq", "at": "at", "event": "event", "state": "state", "percentage": "%", "seen": "seen",
            "created": "new", "updated": "upd", "unchanged": "same", "ignored": "ign", "failed": "fail", "skipped": "skip"}
    table = Table(title=f"ticket {ticket}: the log folded event by event")
    for col, title in cols.items():
        table.add_column(title, justify="left" if col in ("at", "event", "state") else "right", no_wrap=col != "event")
    for step in steps:
        table.add_row(*(str(step[c])[11:23] if c == "at" else str(step[c]) for c in cols))
    _console().print(table)


def _fresh(conn: sa.Connection, ticket: int) -> ImportView:
    view = ImportView(ticket=ticket)
    for s in event_log.read(conn, ticket):
        view = replace(apply(view, s.event), seq=s.seq)
    return without_failures(view)  # as a process's cache holds it


def _folded(conn: sa.Connection, ticket: int) -> ImportView:
    """The ticket's view for a listing: counts and state, its row failures left in the log."""
    return without_failures(fold_stored(event_log.read(conn, ticket, failures=False), ImportView(ticket=ticket)))


def _plain(view: ImportView) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(msgspec.json.encode(view))
    return out


def served_by_service(url: str, token: str | None, client: httpx.Client | None = None) -> Served:
    """What a running service serves for a ticket: GET /ops/imports/{id}/view."""
    http = client or httpx.Client(base_url=url.rstrip("/"), timeout=30)
    auth = {"Authorization": f"Bearer {token}"}

    def fetch(ticket: int) -> dict[str, Any] | None:
        resp = http.get(f"/ops/imports/{ticket}/view", headers=auth)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        view: dict[str, Any] = resp.json()["view"]
        return view

    return fetch


def verify_views(engine: sa.Engine, served: Served | None = None) -> tuple[int, list[tuple[int, list[str]]]]:
    """Re-fold every ticket from scratch; compare with the served (cached) fold. Returns (checked, differences)."""
    cache = ViewCache()

    def local(ticket: int) -> dict[str, Any] | None:
        with read_tx(engine) as conn:
            view = cache.load(conn, ticket)
        return _plain(view) if view else None

    get = served or local
    checked, diffs = 0, list[tuple[int, list[str]]]()
    after = 0
    while True:
        with read_tx(engine) as conn:
            ids = catalog.ticket_ids(conn, after=after, limit=PAGE)
        if not ids:
            return checked, diffs
        for ticket in ids:
            for _ in range(3):  # a live ticket may move on between the two reads
                with read_tx(engine) as conn:
                    fresh = _plain(_fresh(conn, ticket))
                other = get(ticket)
                if other is None or other.get("seq") == fresh["seq"]:
                    break
            checked += 1
            if other is None:
                diffs.append((ticket, ["<not served>"]))
            elif other != fresh:
                diffs.append((ticket, sorted(k for k in fresh.keys() | other.keys() if fresh.get(k) != other.get(k))))
        after = ids[-1]


def history(engine: sa.Engine, *, tenant: str | None, state: str | None, since: datetime | None, limit: int) -> Iterator[dict[str, Any]]:
    """Imports newest first with counts and timings (folding each ticket's log)."""
    size = PAGE if state else min(PAGE, max(limit, 1))
    before: int | None = None
    found = 0
    while found < limit:
        with read_tx(engine) as conn:
            rows = catalog_models.tickets_newest_first(conn, tenant_name=tenant, since=since, before=before, limit=size)
            views = [_folded(conn, r.ticket.id) for r in rows]
        if not rows:
            return
        for row, v in zip(rows, views, strict=True):
            if state and v.state != state:
                continue
            took = (v.finished_at - v.requested_at).total_seconds() if v.finished_at and v.requested_at else None
            yield {
                "id": row.ticket.id, "tenant": row.tenant, "dataset": row.dataset, "dialect": row.ticket.dialect, "state": v.state,
                "total": v.total_rows, "created": v.created, "updated": v.updated, "unchanged": v.unchanged,
                "ignored": v.ignored, "failed": v.failed, "skipped": v.skipped,
                "requested_at": _iso(v.requested_at), "finished_at": _iso(v.finished_at), "seconds": took,
                "webhook": None if not (v.spec and v.spec.callback_url) else
                ("delivered" if v.webhook.delivered_at else "abandoned" if v.webhook.abandoned else "pending"),
            }
            found += 1
            if found >= limit:
                return
        before = rows[-1].ticket.id


def failed_webhooks(engine: sa.Engine, *, tenant: str | None) -> Iterator[dict[str, Any]]:
    """Tickets whose callback was attempted and not delivered: abandoned, or still retrying."""
    from actors.net import redact

    after = 0
    while True:
        with read_tx(engine) as conn:
            rows = catalog_models.tickets_with_callback_attempts(conn, tenant_name=tenant, after=after, limit=PAGE)
            views = [_folded(conn, r.ticket.id) for r in rows]
        if not rows:
            return
        for row, v in zip(rows, views, strict=True):
            wh = v.webhook
            if wh.delivered_at is None and wh.attempts:
                yield {
                    "ticket": row.ticket.id, "tenant": row.tenant, "state": "abandoned" if wh.abandoned else "retrying",
                    "attempts": wh.attempts, "last_status": wh.last_status, "last_error": wh.last_error,
                    "last_attempt_at": _iso(wh.last_attempt_at), "webhook_id": wh.webhook_id,
                    "url": redact(v.spec.callback_url) if v.spec and v.spec.callback_url else None,
                }
        after = rows[-1].ticket.id


def _print_rows(title: str, rows: list[dict[str, Any]], cols: Sequence[str]) -> None:
    table = Table(title=title)
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in cols))
    _console().print(table)


def history_table(rows: list[dict[str, Any]]) -> None:
    """Print import history."""
    cols = ("id", "tenant", "dataset", "dialect", "state", "total", "created", "updated", "failed", "skipped", "requested_at", "seconds", "webhook")
    _print_rows(f"{len(rows)} import(s), newest first", rows, cols)


def webhooks_table(rows: list[dict[str, Any]]) -> None:
    """Print undelivered callbacks."""
    cols = ("ticket", "tenant", "state", "attempts", "last_status", "last_error", "last_attempt_at", "url")
    _print_rows(f"{len(rows)} undelivered callback(s)", rows, cols)
