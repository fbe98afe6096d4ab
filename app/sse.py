"""A ticket's log as Server-Sent Events: what is there, then each new event, until the import (and
any revert of it) has ended."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
from litestar import Request
from litestar.response import ServerSentEvent, ServerSentEventMessage

from actors.runtime import Runtime
from app.concurrency import in_thread
from app.errors import BadRequest
from events import log as event_log
from events.db import read_tx
from events.types import event_type

POLL_SECONDS = 0.2  # how often a follower looks for new events (one indexed read)
KEEPALIVE_SECONDS = 15.0  # a comment line so proxies keep an idle stream open
MAX_SEQ = 2**31 - 1  # events.seq is a 32-bit column on PostgreSQL


def _read(rt: Runtime, ticket: int, after: int) -> list[event_log.StoredEvent]:
    with read_tx(rt.engine) as conn:
        return event_log.read(conn, ticket, after=after)


def _settled(rt: Runtime, ticket: int, seq: int) -> bool:
    """Nothing more for a follower: the log holds nothing past `seq`, the import has ended and no
    revert of it is under way (a revert asked for later shows when the follower resumes)."""
    view = rt.view(ticket)
    return view is None or (view.seq <= seq and view.terminal and not view.reverting)


def message(stored: event_log.StoredEvent) -> ServerSentEventMessage:
    """One event as an SSE message: id = seq (so Last-Event-ID resumes), event = its type."""
    data = msgspec.json.encode({"seq": stored.seq, **msgspec.to_builtins(stored.event)}).decode()
    return ServerSentEventMessage(data=data, event=event_type(stored.event), id=str(stored.seq))


async def event_stream(rt: Runtime, ticket: int, after: int = 0) -> AsyncIterator[ServerSentEventMessage]:
    """Events with seq > after, then new ones as they are appended; ends once the import has ended
    and any revert asked for has ended too (after its terminal event, or the revert's last)."""
    seq = after
    quiet_since = time.monotonic()
    first = True
    while True:
        stored = await in_thread(_read, rt, ticket, seq)
        for item in stored:
            yield message(item)
            seq = item.seq
        if (stored or first) and await in_thread(_settled, rt, ticket, seq):
            return
        first = False
        if stored:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            yield ServerSentEventMessage(comment="keep-alive")
            quiet_since = time.monotonic()
        await anyio.sleep(POLL_SECONDS)


def last_event_id(request: Request[Any, Any, Any]) -> int:
    """Where a follower resumes: the Last-Event-ID header (or ?after=), else from the start.
    Unreadable means 0; a number no seq can reach is a 400 (the database would overflow)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    try:
        seq = max(0, int(raw))
    except ValueError:
        return 0
    if seq > MAX_SEQ:
        raise BadRequest(f"Last-Event-ID / after must be a seq between 0 and {MAX_SEQ}", field="after")
    return seq


def live_events(rt: Runtime, ticket: int, request: Request[Any, Any, Any]) -> ServerSentEvent:
    """The ticket's log as an SSE response, resuming after the caller's last event id."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return ServerSentEvent(event_stream(rt, ticket, last_event_id(request)), headers=headers)
