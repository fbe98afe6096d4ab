"""Parse and apply overlapping: an atomic import's or a dry run's chunks are applied while its file
is still read, and it ends exactly as reading the whole file first ends, a file refused at its end
included (nothing written)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import apply_chunk, finalize, parse_file
from actors.errors import StepFailed
from actors.pipeline import give_up
from events.flow import PARSE, due_chunks
from events.projections import ImportView, iter_results
from tests.support import Harness, contacts, staged_count, types_of, wait_for, write_csv

ROWS = 4000  # 8 chunks of 500 (the harness's chunk size)


def _file(tmp: Path, tail: str = "") -> Path:
    """New and existing keys, failed rows, keys repeated across chunks; `tail` is appended as is."""
    data = contacts(ROWS)
    body = data[1:]
    for i, r in enumerate(body):
        if i % 9 == 0:
            r[2] = "old"
        r[1] = f"Row {i}"
    for i in range(2500, 3000, 7):  # chunk 5 repeats chunk 0's keys
        body[i][0] = body[i - 2500][0]
    path = write_csv(tmp / "file.csv", data)
    if tail:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(tail)
    return path


def _overlap(h: Harness, on: bool) -> None:
    h.rt.settings = msgspec.structs.replace(h.rt.settings, parse_overlap=on)


@contextmanager
def _parse_held_at(h: Harness, ticket: int, chunk: int) -> Iterator[tuple[threading.Event, list[BaseException]]]:
    """The ticket's parse runs in a thread that stops before it stages `chunk` until the event is
    set: the chunks before it are announced, and the test applies them while the file is read."""
    go = threading.Event()
    errors: list[BaseException] = []
    blobs = h.rt.blobs
    write = blobs.write_bytes

    def held(key: str, data: bytes) -> None:
        if key.endswith(f"/{chunk}.msgpack"):
            assert go.wait(60), "the test never let the parse go on"
        write(key, data)

    def run() -> None:
        try:
            parse_file.run(h.rt, ticket)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    blobs.write_bytes = held  # type: ignore[method-assign]
    thread = threading.Thread(target=run, name="parse")
    thread.start()
    try:
        yield go, errors
    finally:
        go.set()
        thread.join(60)
        blobs.write_bytes = write  # type: ignore[method-assign]
        assert not thread.is_alive()


def _staged_chunks(n: int) -> Callable[[ImportView], bool]:
    return lambda v: v.staging is not None and v.staging.chunks >= n


def _apply_due(h: Harness, ticket: int, upto: int | None = None) -> None:
    """Apply due chunks here, in file order (only those below `upto` when given)."""
    while (view := h.rt.view(ticket)) is not None and (due := [k for k in due_chunks(view) if upto is None or k < upto]):
        apply_chunk.run(h.rt, ticket, due[0])


def _outcome(h: Harness, view: ImportView, dataset: str) -> tuple[Any, ...]:
    rows = [(r.index, r.outcome, r.line, r.error) for r in iter_results(view, failures=h.rt.failures(view.ticket))]
    counts = (view.state, view.total_rows, view.created, view.updated, view.unchanged, view.failed, view.rolled_back, view.reason)
    return rows, counts, h.records("acme", dataset)


@pytest.mark.parametrize(("mode", "policy"), [("update", "atomic"), ("insert", "atomic"), ("update", "dry_run")])
def test_chunks_applied_while_the_file_is_read_give_what_reading_it_first_gives(
    harness: Harness, tmp_path: Path, mode: str, policy: str
) -> None:
    h = harness
    token = str(h.tenant("acme")["native"]["token"])
    seed = write_csv(tmp_path / "seed.csv", contacts(1000, start=500))
    path = _file(tmp_path)
    fields = {"dry_run": "true"} if policy == "dry_run" else {"policy": policy}
    seen = {}
    for on in (False, True):
        name = f"overlap_{on}".lower()
        h.dataset("acme", name)
        assert h.wait(int(h.upload(token, seed, dataset=name).json()["id"])).state == "completed"
        _overlap(h, on)
        h.worker.worker.pause()
        try:
            ticket = int(h.upload(token, path, dataset=name, mode=mode, **fields).json()["id"])
            if on:
                with _parse_held_at(h, ticket, 4) as (go, errors):
                    view = wait_for(h.rt, ticket, _staged_chunks(4), "chunks 0-3 to be announced")
                    assert view.parsed is None and 0 in due_chunks(view)
                    _apply_due(h, ticket, upto=3)  # chunks 0-2 applied while the parse waits at chunk 4
                    go.set()
                assert not errors, errors
            else:
                parse_file.run(h.rt, ticket)
            _apply_due(h, ticket)
            finalize.run(h.rt, ticket)
        finally:
            h.worker.worker.resume()
        view = h.wait(ticket)
        types = types_of(h.rt, ticket)
        if on:
            assert types.index("chunk_applied") < types.index("file_parsed"), types
            assert types.count("chunks_staged") == 8, types  # one for each chunk staged
        else:
            assert "chunks_staged" not in types
        assert types.count("chunk_applied") == 8
        seen[on] = _outcome(h, view, name)
    assert seen[True][1] == seen[False][1]
    assert seen[True][0] == seen[False][0]
    assert seen[True][2] == seen[False][2]
    assert seen[True][1][0] == "completed" and len(seen[True][0]) == ROWS


@pytest.mark.parametrize("policy", ["atomic", "dry_run"])
def test_a_file_refused_at_its_end_after_chunks_were_applied_leaves_nothing_written(
    harness: Harness, tmp_path: Path, policy: str
) -> None:
    h = harness
    token = str(h.tenant("acme")["native"]["token"])
    h.dataset("acme")
    seed = write_csv(tmp_path / "seed.csv", contacts(1000, start=500))
    assert h.wait(int(h.upload(token, seed, dataset="contacts").json()["id"])).state == "completed"
    before = h.records("acme")
    path = _file(tmp_path, tail='nobody@example.com,"a name whose quote never closes,30,1.00,true,2024-01-01\r\n')
    fields = {"dry_run": "true"} if policy == "dry_run" else {"policy": policy}
    _overlap(h, True)
    h.worker.worker.pause()
    try:
        ticket = int(h.upload(token, path, dataset="contacts", mode="update", **fields).json()["id"])
        with _parse_held_at(h, ticket, 6) as (go, errors):
            wait_for(h.rt, ticket, _staged_chunks(6), "chunks 0-5 to be announced")
            _apply_due(h, ticket)
            view = h.rt.view(ticket)
            assert view is not None and view.chunks_applied == 6 and view.parsed is None
            assert staged_count(h.rt, ticket) > 0 and h.records("acme") == before  # staged, not in the dataset
            go.set()
        assert len(errors) == 1 and isinstance(errors[0], StepFailed), errors
        give_up(h.rt, ticket, str(errors[0]), PARSE)  # as the step's handler does with a step failed for good
    finally:
        h.worker.worker.resume()
    view = wait_for(h.rt, ticket, lambda v: v.terminal and not v.staged_rows, "the staging to be rolled back")
    assert view.state == "failed" and view.parsed is None
    assert view.reason == f'line {ROWS + 2}: a quote (") opened in this record never closes'
    assert staged_count(h.rt, ticket) == 0
    assert h.records("acme") == before
    types = types_of(h.rt, ticket)
    assert types.count("chunk_applied") == 6 and "file_parsed" not in types
    if policy == "atomic":
        assert view.rolled_back == view.created + view.updated > 0 and types[-1] == "rolled_back", types
