"""Business rules as pure functions: thresholds and write semantics for one chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from events.datasets import ValidRow
from events.types import ImportSpec, Outcome, RowFailure, WriteMode


def threshold_label(spec: ImportSpec) -> str:
    """The threshold as the caller gave it."""
    if spec.threshold_percent is not None:
        return f"{spec.threshold_percent:g}%"
    return str(spec.threshold)


def failure_budget(spec: ImportSpec, total_rows: int) -> int | None:
    """How many failed rows are tolerated (None = no limit)."""
    if spec.threshold_percent is not None:
        return int(total_rows * spec.threshold_percent / 100)
    return spec.threshold


def threshold_verdict(failed: int, budget: int | None) -> bool:
    """True when `failed` rows exceed the budget."""
    return budget is not None and failed > budget


class Write(msgspec.Struct):
    """The final state of one key after a chunk: insert it, or update it."""

    key: str
    values: dict[str, Any]
    new: bool
    index: int  # the row that created it (names its uuid)


class ChunkDecision(msgspec.Struct):
    """What one chunk does: each row's outcome, and the writes that carry it out."""

    runs: list[tuple[Outcome, int]]
    failures: list[RowFailure]
    writes: list[Write]
    failed: int
    exceeded: bool
    failed_existing: list[int] = []  # failed rows whose key named an existing record


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Records equal when their non-null fields are equal (a missing field is null)."""
    return {k: v for k, v in a.items() if v is not None} == {k: v for k, v in b.items() if v is not None}


def decide_chunk(
    rows: Sequence[tuple[int, int, ValidRow | str]],
    existing: Mapping[str, dict[str, Any]],
    mode: WriteMode,
    failed_before: int,
    budget: int | None,
    exceeded_before: bool = False,
    failed_keys: Mapping[int, str] | None = None,
    earlier: Mapping[str, int] | None = None,
) -> ChunkDecision:
    """Decide every row of a chunk, in order. rows: (index, line, validated row or error);
    failed_keys: the keys that could be read from failed rows, by row index; earlier: the keys
    earlier chunks of this import created, with the line of the row that created each."""
    runs: list[tuple[Outcome, int]] = []
    failures: list[RowFailure] = []
    failed_existing: list[int] = []
    known = failed_keys or {}
    first_lines: dict[str, int] = dict(earlier or {})  # insert: key -> line of the row that created it
    state: dict[str, tuple[dict[str, Any], bool, int]] = {}  # key -> (values, new?, creating row)
    failed = failed_before
    exceeded = exceeded_before
    last: Outcome | None = None  # the open run: outcome and length (runs are appended when they end)
    length = 0
    for index, line, row in rows:
        if exceeded:
            outcome: Outcome = "s"
        elif isinstance(row, str):
            outcome = "f"
            failures.append(RowFailure(index, line, row))
            failed_key = known.get(index)
            if failed_key is not None and (failed_key in state or failed_key in existing):
                failed_existing.append(index)
        else:
            key = row.key
            current = state.get(key)
            old = current[0] if current is not None else existing.get(key)
            if old is None:
                outcome = "c"
                state[key] = (row.values, True, index)  # the validator made this dict for this row alone
                if mode == "insert":
                    first_lines[key] = line
            elif mode == "insert":
                outcome = "f"
                first = first_lines.get(key)
                message = (
                    f"duplicate key {key}: the record already exists"
                    if first is None
                    else f"duplicate key in file (first at line {first})"
                )
                failures.append(RowFailure(index, line, message))
                failed_existing.append(index)
            elif mode == "ignore":
                outcome = "i"
            else:
                merged = {**old, **row.values} if mode == "update" else dict(row.values)
                if _same(merged, old):
                    outcome = "n"
                else:
                    outcome = "u"
                    new, creator = (current[1], current[2]) if current is not None else (False, index)
                    state[key] = (merged, new, creator)
        if outcome == "f":
            failed += 1
            if threshold_verdict(failed, budget):
                exceeded = True
        if outcome == last:
            length += 1
        else:
            if last is not None:
                runs.append((last, length))
            last, length = outcome, 1
    if last is not None:
        runs.append((last, length))
    writes = [Write(key, values, new, creator) for key, (values, new, creator) in state.items()]
    return ChunkDecision(runs, failures, writes, failed, exceeded, failed_existing)
