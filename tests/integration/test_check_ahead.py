"""Check ahead: the rows a child process checked give exactly what the worker's own checks give."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.blobs import LocalBlobs
from actors.check_ahead import CheckAhead
from actors.checks import check_rows, checked_key
from actors.chunks import ParsedChunk, encode_chunk
from events.datasets import KeyReader, RowValidator, parse_schema
from events.projections import iter_results
from tests.support import Harness, contacts, write_csv
from tests.support.files import CONTACTS_SCHEMA

COLUMNS = ("email", "name", "age", "balance", "active", "joined")


@pytest.fixture
def harness_settings() -> dict[str, Any]:
    """Check ahead works for chunks applied one after another (side by side, the workers check their own)."""
    return {"apply_parallel": 1}


def _messy(n: int) -> list[list[Any]]:
    """Contacts with bad ages, bad emails (no key), short rows and keys repeated chunks apart."""
    rows = contacts(n)
    for i, r in enumerate(rows[1:], start=1):
        if i % 7 == 0:
            r[2] = "old"  # a failed row whose key can be read
        if i % 11 == 0:
            r[0] = "not-an-email"  # a failed row without a key
        if i % 13 == 0:
            r[:] = rows[max(1, i - 600)][:1] + [f"Again {i}", 30, "1.50", "yes", "2024-02-01"]  # a key seen a chunk ago
    return rows


def _outcomes(h: Harness, ticket: int) -> list[tuple[Any, ...]]:
    view = h.wait(ticket)
    assert view.state == "completed", view.reason
    return [(r.index, r.outcome, r.line, r.error) for r in iter_results(view, failures=h.rt.failures(ticket))]


@pytest.mark.parametrize("mode", ["insert", "update"])
def test_an_import_gives_the_same_outcomes_and_records_with_check_ahead_as_without(
    harness: Harness, tmp_path: Path, mode: str
) -> None:
    creds = harness.tenant("acme")
    token = str(creds["native"]["token"])
    for name in ("inline", "ahead"):
        harness.dataset("acme", name)
    seed = write_csv(tmp_path / "seed.csv", contacts(300, start=200))
    path = write_csv(tmp_path / "messy.csv", _messy(2200))  # 5 chunks of 500
    results = {}
    for name, enabled in (("inline", False), ("ahead", True)):
        harness.rt.check_ahead.enabled = enabled
        assert harness.wait(int(harness.upload(token, seed, dataset=name).json()["id"])).state == "completed"
        taken = harness.rt.check_ahead.taken
        resp = harness.upload(token, path, dataset=name, mode=mode)
        assert resp.status_code == 202, resp.text
        results[name] = _outcomes(harness, int(resp.json()["id"]))
        assert harness.rt.check_ahead.taken - taken == (4 if enabled else 0)  # chunks 1-4 were checked ahead
        assert harness.rt.check_ahead._child is None  # and the child ended with the import's last chunk
    assert results["ahead"] == results["inline"]
    assert {o for _, o, _, _ in results["ahead"]} >= {"c", "f"}
    assert harness.records("acme", "ahead") == harness.records("acme", "inline")


def _chunk(first: int, rows: list[list[Any]]) -> ParsedChunk:
    return ParsedChunk(first, [(first + i + 2, [None if c is None else str(c) for c in r]) for i, r in enumerate(rows)])


def test_the_child_checks_a_chunk_as_the_worker_would_and_a_lost_child_is_replaced() -> None:
    schema = parse_schema(CONTACTS_SCHEMA)
    staged = _chunk(500, _messy(300)[1:])
    inline = check_rows(staged, RowValidator(schema, COLUMNS), KeyReader(schema, COLUMNS))
    ahead = CheckAhead(enabled=True)
    key = ("t", 1, msgspec.json.encode(schema), COLUMNS)
    try:
        ahead.start(key, lambda: encode_chunk(staged))
        got = ahead.take(key)
        assert got == inline and got.failed_keys and any(isinstance(r, str) for _, _, r in got.rows)
        assert ahead.take(key) is None  # taken once; a chunk never started is None too
        child = ahead._child
        assert child is not None
        os.kill(child.proc.pid, signal.SIGKILL)  # the child dies: its check fails over to the worker
        child.proc.wait(10)
        ahead.start(("t", 2, *key[2:]), lambda: encode_chunk(staged))
        assert ahead.take(("t", 2, *key[2:])) in (None, inline)
        ahead.start(("t", 3, *key[2:]), lambda: encode_chunk(staged))  # and the next start has a new child
        assert ahead.take(("t", 3, *key[2:])) == inline
        assert ahead._child is not child
    finally:
        ahead.close()


def test_a_chunk_that_cannot_be_read_fails_only_its_own_check() -> None:
    schema = parse_schema(CONTACTS_SCHEMA)
    staged = _chunk(0, contacts(20)[1:])
    ahead = CheckAhead(enabled=True)
    key = ("t", 0, msgspec.json.encode(schema), COLUMNS)

    def gone() -> bytes:
        raise FileNotFoundError("chunks/t/0.msgpack")

    try:
        ahead.start(key, gone)
        assert ahead.take(key) is None
        ahead.start(("t", 1, *key[2:]), lambda: encode_chunk(staged))
        got = ahead.take(("t", 1, *key[2:]))
        assert got is not None and len(got.rows) == 20
    finally:
        ahead.close()


def test_a_check_started_by_one_worker_process_is_found_by_another_through_the_blob_store(tmp_path: Path) -> None:
    """Scaled: chunk k+1 may be applied by another worker process than the one that checked it ahead."""
    schema = parse_schema(CONTACTS_SCHEMA)
    staged = _chunk(0, _messy(100)[1:])
    store = LocalBlobs(tmp_path / "blobs")
    key = ("4f1c9d2e-0000-4000-8000-000000000001", 1, msgspec.json.encode(schema), COLUMNS)
    checking, applying = CheckAhead(enabled=True, share=store), CheckAhead(enabled=True, share=store)
    try:
        checking.start(key, lambda: encode_chunk(staged))
        deadline = time.monotonic() + 30
        while not (tmp_path / "blobs" / checked_key(*key)).exists():
            assert time.monotonic() < deadline, "the check was not stored within 30 s"
            time.sleep(0.02)
        got = applying.take(key)
        assert got == check_rows(staged, RowValidator(schema, COLUMNS), KeyReader(schema, COLUMNS))
        assert applying.taken == 1
        other_columns = (*key[:3], COLUMNS[:-1])  # a check made for other columns is not this one's
        assert applying.take(other_columns) is None
    finally:
        checking.close()
        applying.close()


def test_check_ahead_is_on_by_default_when_scaled_and_off_embedded(tmp_path: Path) -> None:
    """Embedded, its child would take the service past its memory budget; scaled, it shares its checks."""
    from actors.settings import load_settings
    from app.wiring import make_runtime

    cases = {
        "embedded": ({}, False, False),
        "embedded, asked for": ({"check_ahead": True}, True, False),
        "scaled": ({"redis_url": "redis://127.0.0.1:1/0"}, True, True),
        "scaled, turned off": ({"redis_url": "redis://127.0.0.1:1/0", "check_ahead": False}, False, True),
    }
    for name, (overrides, enabled, shared) in cases.items():
        rt = make_runtime(load_settings(env={}, data_dir=str(tmp_path / name), **overrides))
        try:
            cores = (os.cpu_count() or 1) > 1  # one core: never (the child would only take turns with the worker)
            assert (rt.check_ahead.enabled, rt.check_ahead.share is not None) == (enabled and cores, shared), name
        finally:
            rt.close()
