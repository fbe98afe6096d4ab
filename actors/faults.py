"""Test-only fault injection: crash or fail a pipeline step at a named point, on request.

The one exception to "only app/settings.py reads os.environ": this hook exists for the
fault-injection suite (tests/faults/), reads IMPORTER_FAULT once at import, and is inert
unless it is set (a real deployment never sets it). A test in the same process may arm() it.

IMPORTER_FAULT holds comma-separated `step:when:point:action` rules, e.g.
`apply_chunk:3:before_commit:kill`:
  step    parse_file | apply_chunk | finalize | revert_chunk
  when    the chunk number (parse_file "staged": chunks staged so far), or * for any
  point   parse_file: staged, announced (the log first holds N chunks as staged, the file still being read), after_commit
          apply_chunk: before_commit, after_commit, after_drive
          finalize, revert_chunk: before_commit, after_commit
          (before_commit: inside the step's transaction, after its writes and append;
           after_commit: committed, next step not enqueued yet -- the outbox gap;
           after_drive: next step enqueued, message not acknowledged yet)
  action  kill (SIGKILL this process) | term (SIGTERM it, the step goes on) |
          raise (raise FaultInjected once) | always (raise every time: a poison step) |
          pgkill (terminate the step's PostgreSQL connection from another one, once)
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import msgspec


class FaultInjected(RuntimeError):
    """The error an armed `raise`/`always` rule raises."""


class Rule(msgspec.Struct, frozen=True):
    """One parsed rule."""

    step: str
    when: str
    point: str
    action: str


ACTIONS = ("kill", "term", "raise", "always", "pgkill")
_lock = threading.Lock()
_rules: list[Rule] = []
_fired: set[Rule] = set()


def parse(text: str) -> list[Rule]:
    """Rules from their text form; ValueError names a malformed one."""
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        fields = item.split(":")
        if len(fields) != 4 or fields[3] not in ACTIONS:
            raise ValueError(f"IMPORTER_FAULT rule {item!r} is not step:when:point:{'|'.join(ACTIONS)}")
        rules.append(Rule(*fields))
    return rules


def arm(text: str) -> None:
    """Replace the active rules (tests running steps in their own process)."""
    global _rules
    with _lock:
        _rules = parse(text)
        _fired.clear()


def disarm() -> None:
    """Forget every rule."""
    arm("")


def hit(step: str, point: str, when: int | None = None, conn: Any = None) -> None:
    """Called by a step at a named point: carry out a matching rule, if any (else do nothing)."""
    if not _rules:
        return
    with _lock:
        rule = next(
            (r for r in _rules if r.step == step and r.point == point and r.when in ("*", str(when))), None
        )
        if rule is None or (rule.action in ("raise", "pgkill", "term") and rule in _fired):
            return
        _fired.add(rule)
    if rule.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif rule.action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    elif rule.action == "pgkill":
        _terminate_backend(conn)
    else:
        raise FaultInjected(f"fault injected at {step}:{when if when is not None else '*'}:{point}")


def _terminate_backend(conn: Any) -> None:
    """Kill the step's own database session from a second connection, and wait until it is gone."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with conn.engine.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)}, 10000)")
        other.commit()


arm(os.environ.get("IMPORTER_FAULT", ""))
