"""Structured logging: JSON lines in production, readable text in a terminal, ticket ids on every line."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_ticket: contextvars.ContextVar[int | None] = contextvars.ContextVar("ticket", default=None)
_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)


@contextmanager
def ticket_context(ticket: int | None, step: str | None = None) -> Iterator[None]:
    """Tag every log line inside the block with the ticket (and step)."""
    t1 = _ticket.set(ticket)
    t2 = _step.set(step)
    try:
        yield
    finally:
        _ticket.reset(t1)
        _step.reset(t2)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ticket = _ticket.get()
        record.step = _step.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ticket = getattr(record, "ticket", None)
        if ticket is not None:
            out["ticket"] = ticket
        step = getattr(record, "step", None)
        if step is not None:
            out["step"] = step
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines with the ticket id where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ticket = getattr(record, "ticket", None)
        tag = f" [ticket {ticket}]" if ticket is not None else ""
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}{tag}: {record.getMessage()}"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def setup_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Configure the root logger once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("dramatiq").setLevel("WARNING")
