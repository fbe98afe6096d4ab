"""Chunks applied side by side give, row by row, exactly what one after another gives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import apply_chunk, finalize, parse_file
from events.flow import due_chunks
from events.projections import ImportView, iter_results
from tests.support import Harness, contacts, types_of, write_csv

# 8 chunks of 500 (the harness's chunk size). Chunk 3 repeats keys of chunk 0, chunk 6 of chunk 5,
# chunk 7 of chunk 3 (and of itself); with 4 in flight each chunk waits for:
AFTER_4 = (-1, -1, -1, 0, 0, 1, 5, 3)


def _file(rows: int = 4000) -> list[list[Any]]:
    """Contacts with failed rows (bad age: key readable; bad email: no key) and keys repeated across chunks."""
    data = contacts(rows)
    body = data[1:]
    for i, r in enumerate(body):
        if i % 7 == 0:
            r[2] = "old"
        if i % 11 == 0:
            r[0] = "not-an-email"
    for i in range(1500, 2000, 5):  # chunk 3 updates (or, on insert, duplicates) chunk 0's keys
        body[i][0] = body[i - 1500][0]
    for i in range(3000, 3500, 9):  # chunk 6: chunk 5's
        body[i][0] = body[i - 400][0]
    for i in range(3513, 4000, 13):  # chunk 7: chunk 3's (so chunk 0's) and its own
        body[i][0] = body[i - 2000 if i % 2 else i - 7][0]
    for i, r in enumerate(body):
        r[1] = f"Row {i}"  # every row changes what it names, so the last row of a key must win
    return data


def _results(h: Harness, view: ImportView) -> list[tuple[Any, ...]]:
    return [(r.index, r.outcome, r.line, r.error) for r in iter_results(view, failures=h.rt.failures(view.ticket))]


def _counts(view: ImportView) -> tuple[Any, ...]:
    return (view.state, view.created, view.updated, view.unchanged, view.ignored, view.failed, view.failed_existing,
            view.skipped, view.reason)


def _parallel(h: Harness, n: int) -> None:
    h.rt.settings = msgspec.structs.replace(h.rt.settings, apply_parallel=n)


@pytest.mark.parametrize(
    ("mode", "policy"),
    [("insert", "partial"), ("update", "partial"), ("replace", "partial"), ("ignore", "partial"),
     ("update", "atomic"), ("insert", "atomic"), ("update", "dry_run")],
)
def test_four_chunks_at_once_give_every_row_outcome_and_record_one_at_a_time_gives(
    harness: Harness, tmp_path: Path, mode: str, policy: str
) -> None:
    creds = harness.tenant("acme")
    token = str(creds["native"]["token"])
    seed = write_csv(tmp_path / "seed.csv", contacts(1000, start=500))  # half of chunks 1 and 2 exist
    path = write_csv(tmp_path / "file.csv", _file())
    seen: dict[int, tuple[list[tuple[Any, ...]], tuple[Any, ...], dict[str, Any], ImportView]] = {}
    for parallel in (1, 4):
        name = f"p{parallel}"
        harness.dataset("acme", name)
        _parallel(harness, parallel)
        assert harness.wait(int(harness.upload(token, seed, dataset=name).json()["id"])).state == "completed"
        fields = {"dry_run": "true"} if policy == "dry_run" else {"policy": policy}
        resp = harness.upload(token, path, dataset=name, mode=mode, **fields)
        assert resp.status_code == 202, resp.text
        view = harness.wait(int(resp.json()["id"]), timeout=120)
        seen[parallel] = (_results(harness, view), _counts(view), harness.records("acme", name), view)
    one, four = seen[1], seen[4]
    assert four[3].parsed is not None and (four[3].parsed.parallel, four[3].parsed.after) == (4, AFTER_4)
    assert one[3].parsed is not None and one[3].parsed.after == ()
    assert four[1] == one[1]
    assert four[0] == one[0]
    assert four[2] == one[2]
    assert one[1][0] == "completed" and len(one[0]) == 4000
    outcomes = {o for _, o, _, _ in one[0]}
    assert "f" in outcomes and outcomes & {"c", "u", "i"}


def _by_hand(h: Harness, ticket: int, pick: random.Random | None) -> ImportView:
    """Parse and apply every chunk in this thread: in file order, or (`pick`) any due chunk at each turn."""
    parse_file.run(h.rt, ticket)
    while (view := h.rt.view(ticket)) is not None and (due := due_chunks(view)):
        apply_chunk.run(h.rt, ticket, pick.choice(due) if pick else due[0])
    finalize.run(h.rt, ticket)
    view = h.rt.view(ticket)
    assert view is not None and view.terminal
    return view


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunks_committed_in_any_order_their_turns_allow_give_what_file_order_gives(
    harness: Harness, tmp_path: Path, seed: int
) -> None:
    """Deterministic interleavings: with the worker paused, due chunks are applied here in a random order."""
    token = str(harness.tenant("acme")["native"]["token"])
    path = write_csv(tmp_path / "file.csv", _file())
    views = {}
    harness.worker.worker.pause()
    try:
        for parallel, pick in ((1, None), (4, random.Random(seed))):
            name = f"p{parallel}"
            harness.dataset("acme", name)
            _parallel(harness, parallel)
            resp = harness.upload(token, path, dataset=name, mode="update")
            assert resp.status_code == 202, resp.text
            views[parallel] = _by_hand(harness, int(resp.json()["id"]), pick)
    finally:
        harness.worker.worker.resume()
    four, one = views[4], views[1]
    order = [c.chunk for c in sorted(four.outcomes, key=lambda c: c.at)]
    assert sorted(order) == list(range(8)) and order != list(range(8)), order  # some went ahead of an earlier one
    assert _results(harness, four) == _results(harness, one) and _counts(four) == _counts(one)
    assert harness.records("acme", "p4") == harness.records("acme", "p1")
    assert types_of(harness.rt, four.ticket).count("chunk_applied") == 8


def test_a_chunk_whose_turn_has_not_come_is_not_applied(embedded: Harness, tmp_path: Path) -> None:
    """A message for a chunk that must wait (a resent one, say) does nothing; the chunk is applied in its turn."""
    h = embedded
    token = str(h.tenant("acme")["native"]["token"])
    h.dataset("acme")
    _parallel(h, 4)
    h.worker.worker.pause()
    try:
        ticket = int(h.upload(token, write_csv(tmp_path / "file.csv", _file()), dataset="contacts", mode="update").json()["id"])
        parse_file.run(h.rt, ticket)
        before = types_of(h.rt, ticket)
        apply_chunk.run(h.rt, ticket, 3)  # waits for chunk 0
        apply_chunk.run(h.rt, ticket, 4)  # waits for chunk 0 (the window)
        assert types_of(h.rt, ticket) == before
        apply_chunk.run(h.rt, ticket, 2)
        apply_chunk.run(h.rt, ticket, 2)  # a second delivery of the same message
        assert types_of(h.rt, ticket) == [*before, "chunk_applied"]
    finally:
        h.worker.worker.resume()
    view = h.wait(ticket)
    assert view.state == "completed" and view.rows_seen == 4000
