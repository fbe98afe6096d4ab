"""Imports that write the same dataset at the same time report what the database really did."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from actors import apply_chunk, finalize, parse_file
from actors.runtime import Runtime
from events.db import read_tx
from events.projections import ImportView
from tests.support import Harness, staged_count, ticket_records, types_of, write_csv

KEYS = 3000
SCHEMA = {
    "fields": [{"name": "email", "type": "email", "required": True},
               {"name": "name", "type": "string"}, {"name": "age", "type": "integer"}],
    "key": ["email"],
}


def _rows(seed: int, version: int, keys: Sequence[int] = range(KEYS)) -> list[list[Any]]:
    """These emails (all KEYS unless given) in a shuffled order; `version` changes the name so updates change something."""
    order = list(keys)
    random.Random(seed).shuffle(order)
    return [["email", "name", "age"]] + [[f"u{i}@x.io", f"v{version}", str(i % 90)] for i in order]


def _contacts(h: Harness) -> str:
    """A tenant with the email-keyed dataset `contacts`; its native token."""
    creds = h.tenant("acme")
    h.dataset("acme", schema=SCHEMA)
    return str(creds["native"]["token"])


def _submit(h: Harness, token: str, path: Path, **fields: Any) -> int:
    resp = h.upload(token, path, dataset="contacts", **fields)
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


@pytest.mark.parametrize("mode", ["insert", "update", "replace", "ignore"])
def test_concurrent_imports_of_the_same_keys_count_each_key_created_once(
    harness: Harness, tmp_path: Path, mode: str
) -> None:
    token = _contacts(harness)
    harness.worker.worker.pause()  # queue all four first, so their chunks interleave
    tickets = [_submit(harness, token, write_csv(tmp_path / f"f{n}.csv", _rows(seed=n, version=n % 2)), mode=mode) for n in range(4)]
    harness.worker.worker.resume()
    views = [harness.wait(t, timeout=120) for t in tickets]
    assert all(v.state == "completed" for v in views), [(v.state, v.reason) for v in views]
    created = sum(v.created for v in views)
    assert created == KEYS, f"{created} rows reported created for {KEYS} keys"
    assert len(harness.records("acme")) == KEYS
    for v in views:
        assert v.created + v.updated + v.unchanged + v.ignored + v.failed == KEYS
    if mode == "insert":  # every later import finds each key taken: a row error, never a silent update
        assert sum(v.failed for v in views) == 3 * KEYS
    if mode == "ignore":
        assert sum(v.ignored for v in views) == 3 * KEYS
    if mode in ("update", "replace"):  # versions alternate 0,1,0,1: each import after the first
        assert sum(v.updated + v.unchanged for v in views) == 3 * KEYS


# An atomic import decides each chunk against the records as they are then, and merges at finalize:
# when another import changed a staged key's record in between, the import is refused whole.
REFUSED = re.compile(
    r"another import changed (\d+) of this import's records while it ran \(first: key (.+)\); "
    r"no records were added or updated; submit the file again"
)


def _completion_order(h: Harness) -> list[int]:
    """Tickets in the order their imports completed (the log's global append order)."""
    with read_tx(h.rt.engine) as conn:
        query = sa.text("SELECT ticket FROM events WHERE type = 'import_completed' ORDER BY id")
        return [int(t) for t in conn.execute(query).scalars()]


def _writers(h: Harness) -> set[int]:
    """The tickets that last wrote the dataset's records."""
    with read_tx(h.rt.engine) as conn:
        return {int(t) for t in conn.execute(sa.text("SELECT DISTINCT ticket FROM records")).scalars()}


def _refused_whole(h: Harness, view: ImportView) -> tuple[int, str]:
    """An import the finalize check refused: failed with the reason, rolled back, nothing of it written.
    Returns how many records the reason says changed, and the first one's key."""
    match = REFUSED.fullmatch(view.reason or "")
    assert view.state == "failed" and match, (view.state, view.reason)
    assert view.rolled_back == view.created + view.updated > 0
    assert types_of(h.rt, view.ticket)[-2:] == ["rolled_back", "import_failed"]
    assert ticket_records(h.rt, view.ticket) == {} and staged_count(h.rt, view.ticket) == 0
    return int(match[1]), match[2]


@pytest.mark.parametrize("mode", ["insert", "update", "replace"])
def test_concurrent_atomic_imports_of_the_same_keys_merge_only_decisions_still_true(
    harness: Harness, tmp_path: Path, mode: str
) -> None:
    """Four atomic imports of the same keys queued together stage their first chunks before any can finalize:
    the first to finalize creates every key, and the staged decisions of the others it overtook are refused."""
    token = _contacts(harness)
    harness.worker.worker.pause()
    paths = [write_csv(tmp_path / f"f{n}.csv", _rows(seed=n, version=n % 2)) for n in range(4)]
    tickets = [_submit(harness, token, p, mode=mode, policy="atomic") for p in paths]
    harness.worker.worker.resume()
    views = {t: harness.wait(t, timeout=120) for t in tickets}
    done = [t for t in _completion_order(harness) if t in views]
    refused = [t for t in tickets if t not in done]
    assert refused, "every import completed: the test made no conflict"
    for t in refused:
        _refused_whole(harness, views[t])
    assert sum(views[t].created for t in done) == KEYS
    creator, *later = done
    assert views[creator].created == KEYS
    for t in later:  # each decided against records that were still there when it merged
        v = views[t]
        if mode == "insert":
            assert v.failed == KEYS, (v.created, v.failed)
        else:
            assert v.updated + v.unchanged == KEYS and v.updated in (0, KEYS), (v.updated, v.unchanged)
    last = [t for t in done if views[t].created + views[t].updated == KEYS][-1]  # the last merge that wrote
    records = harness.records("acme")
    assert len(records) == KEYS
    assert _writers(harness) == {last}
    assert {r["name"] for r in records.values()} == {f"v{tickets.index(last) % 2}"}


def _run_by_hand(rt: Runtime, ticket: int, *, finish: bool = True) -> None:
    """Parse the ticket's file and apply every chunk in this thread; then finalize, unless told not to."""
    parse_file.run(rt, ticket)
    view = rt.view(ticket)
    assert view is not None and view.parsed is not None, view
    for n in range(view.parsed.chunks):
        apply_chunk.run(rt, ticket, n)
    if finish:
        finalize.run(rt, ticket)


def _first_overtaken_by_second(
    h: Harness, token: str, first: tuple[Path, dict[str, Any]], second: tuple[Path, dict[str, Any]]
) -> tuple[ImportView, ImportView]:
    """`first` applies all its chunks, then `second` runs whole, then `first` finalizes: both views.

    The steps run here, by hand, while the worker is paused; what they enqueue meanwhile are late
    duplicates the worker finds nothing to do for once it resumes.
    """
    h.worker.worker.pause()
    try:
        a = _submit(h, token, first[0], **first[1])
        b = _submit(h, token, second[0], **second[1])
        _run_by_hand(h.rt, a, finish=False)
        _run_by_hand(h.rt, b)
        finalize.run(h.rt, a)
    finally:
        h.worker.worker.resume()
    return h.wait(a), h.wait(b)


@pytest.mark.parametrize("policy", ["atomic", "partial"])
def test_an_atomic_import_whose_records_another_import_changed_while_it_ran_is_refused_whole(
    harness: Harness, tmp_path: Path, policy: str
) -> None:
    token = _contacts(harness)
    keys = range(1200)  # three chunks
    seed = harness.wait(_submit(harness, token, write_csv(tmp_path / "seed.csv", _rows(0, 0, keys))))
    assert seed.created == 1200
    before = harness.records("acme")
    rows = _rows(1, 1, keys)
    changed = [7, 450, 1199, 3]
    a, b = _first_overtaken_by_second(
        harness, token,
        (write_csv(tmp_path / "a.csv", rows), {"mode": "update", "policy": "atomic"}),
        (write_csv(tmp_path / "b.csv", _rows(2, 2, changed)), {"mode": "update", "policy": policy}),
    )
    assert (b.state, b.updated) == ("completed", 4)
    assert a.updated == 1200  # what it decided against the seed
    keys_changed = [f'["u{i}@x.io"]' for i in changed]  # record keys, as row errors name them too
    first = next(f'["{r[0]}"]' for r in rows[1:] if f'["{r[0]}"]' in keys_changed)  # first in the refused file
    assert _refused_whole(harness, a) == (4, first)
    assert harness.records("acme") == {**before, **{k: {**before[k], "name": "v2"} for k in keys_changed}}


def test_atomic_imports_of_disjoint_keys_both_complete_however_they_interleave(harness: Harness, tmp_path: Path) -> None:
    token = _contacts(harness)
    a, b = _first_overtaken_by_second(
        harness, token,
        (write_csv(tmp_path / "a.csv", _rows(1, 1, range(0, 1200))), {"mode": "insert", "policy": "atomic"}),
        (write_csv(tmp_path / "b.csv", _rows(2, 2, range(1200, 2000))), {"mode": "insert", "policy": "atomic"}),
    )
    assert (a.state, a.created, b.state, b.created) == ("completed", 1200, "completed", 800)
    assert len(ticket_records(harness.rt, a.ticket)) == 1200 and len(ticket_records(harness.rt, b.ticket)) == 800


def test_a_dry_run_overtaken_by_an_import_of_its_keys_still_reports_what_it_would_have_done(
    harness: Harness, tmp_path: Path
) -> None:
    token = _contacts(harness)
    keys = range(1200)
    harness.wait(_submit(harness, token, write_csv(tmp_path / "seed.csv", _rows(0, 0, keys))))
    a, b = _first_overtaken_by_second(
        harness, token,
        (write_csv(tmp_path / "a.csv", _rows(1, 1, keys)), {"mode": "update", "policy": "atomic", "dry_run": "true"}),
        (write_csv(tmp_path / "b.csv", _rows(2, 2, range(0, 1200, 100))), {"mode": "update"}),
    )
    assert (a.state, a.updated, a.reason) == ("completed", 1200, None)
    assert (b.state, b.updated) == ("completed", 12)
    assert ticket_records(harness.rt, a.ticket) == {} and staged_count(harness.rt, a.ticket) == 0
