"""The HTTP protocol `serve` runs: uvicorn's httptools protocol plus the limits it lacks.

uvicorn (httptools) has no limit on the size of a request head and no timeout for a head or a body
that arrives slowly: a client could hold 20 MB of unfinished headers, or a half-sent upload and its
spool file, for as long as it liked. Here a head over `max_header_bytes` gets 431, a head not
complete within `header_timeout` gets 408, and a body that sends nothing for `body_timeout` (or
averages under `body_min_rate` bytes/s once it has run that long) gets 408; each closes the
connection. Time the app itself takes (reading is paused while it works) is never counted.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, NamedTuple

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from actors.settings import Settings, load_settings

_CHECK_EVERY = 1.0  # seconds between looks at a body in progress


class HttpLimits(NamedTuple):
    """The guard's settings (IMPORTER_MAX_HEADER_BYTES, _HEADER_TIMEOUT, _BODY_TIMEOUT, _BODY_MIN_RATE)."""

    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    body_min_rate: int

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        """The limits a settings object names."""
        return cls(settings.max_header_bytes, settings.header_timeout, settings.body_timeout, settings.body_min_rate)


@functools.cache
def _limits() -> HttpLimits:
    return HttpLimits.of(load_settings())  # once per process (uvicorn's workers are processes)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; data_received sends the refusal."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head size limit and head and body timeouts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = _limits()
        self._head_pending = True  # a request head has begun (or the connection is new) and is not complete
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_watch: asyncio.TimerHandle | None = None
        self._body_started = self._body_seen = self._body_checked = 0.0
        self._body_bytes = 0
        self._refusal: tuple[int, str, str] | None = None

    # ------------------------------------------------------------ the head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a whole head is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_pending:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refusal is None:
                raise
            self._refuse(*self._refusal, answer=True)
            return
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head_pending and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(*self._too_large(), answer=True)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending, self._head_bytes = True, 0
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._head_pending = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = self._too_large()
            raise _Refused
        super().on_headers_complete()
        self._body_started = self._body_seen = self._body_checked = self.loop.time()
        self._body_bytes = 0
        self._body_watch = self.loop.call_later(_CHECK_EVERY, self._check_body)

    def _too_large(self) -> tuple[int, str, str]:
        limit = self.limits.max_header_bytes
        return 431, "headers_too_large", f"the request line and headers are larger than {limit // 1024} KB"

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head_pending and not self.transport.is_closing():
            message = f"the request headers did not arrive within {self.limits.header_timeout:g} s"
            self._refuse(408, "request_timeout", message, answer=True)

    # ------------------------------------------------------------ the body

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            # The app answered (a refusal, as a rule) without reading the whole body: reading and
            # discarding the rest would cost this process for nothing, so the connection ends here.
            self.server_state.total_requests += 1
            self._cancel_timers()
            self.transport.close()
            return
        super().on_response_complete()

    def on_message_complete(self) -> None:
        if self._body_watch is not None:
            self._body_watch.cancel()
            self._body_watch = None
        super().on_message_complete()

    def _check_body(self) -> None:
        """Close a body that stalls or trickles; waiting on the app (reading paused) is not stalling."""
        self._body_watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the app has not asked for more yet: the client cannot send
            self._body_started += now - self._body_checked
            self._body_seen = now
        self._body_checked = now
        limits = self.limits
        ran = now - self._body_started
        answer = self.cycle is None or not self.cycle.response_started
        if now - self._body_seen >= limits.body_timeout:
            message = f"no part of the request body arrived for {limits.body_timeout:g} s"
            self._refuse(408, "request_timeout", message, answer=answer)
        elif ran >= limits.body_timeout and self._body_bytes < limits.body_min_rate * ran:
            message = f"the request body arrives slower than {limits.body_min_rate} bytes/s"
            self._refuse(408, "request_timeout", message, answer=answer)
        else:
            self._body_watch = self.loop.call_later(_CHECK_EVERY, self._check_body)

    # ------------------------------------------------------------ refusing

    def _refuse(self, status: int, code: str, message: str, *, answer: bool) -> None:
        """Answer in the native error shape (unless the app's response has begun), and close."""
        self._cancel_timers()
        self.logger.warning("refused a request from %s: %s", self.client, message)
        if answer:
            body = b'{"error":{"code":"%s","message":"%s"}}' % (code.encode(), message.encode())
            reason = "Request Header Fields Too Large" if status == 431 else "Request Timeout"
            head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            self.transport.write(head.encode() + body)
        if self.cycle is not None:
            self.cycle.keep_alive = False
        self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_watch):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_watch = None
