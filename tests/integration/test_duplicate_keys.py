"""A key twice in one file, through HTTP: update/replace keep the later row, insert names the first line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import Harness, native_auth, submit, write_csv

HEADER = ["email", "name", "age"]


@pytest.fixture
def harness_settings() -> dict[str, Any]:
    """Chunks of three rows: the file's duplicates fall in one chunk and across chunks."""
    return {"chunk_size": 3}


def _results(h: Harness, auth: dict[str, str], ticket: int) -> list[dict[str, Any]]:
    resp = h.client.get(f"/imports/{ticket}/results?limit=1000", headers=auth)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


@pytest.mark.parametrize("policy", ["partial", "atomic", "dry run"])
def test_insert_fails_a_key_seen_earlier_in_the_file_naming_its_first_line(
    harness: Harness, tmp_path: Path, policy: str
) -> None:
    """Partial writes to the records, atomic and dry runs to the ticket's staging: the same outcomes."""
    h = harness
    auth = native_auth(h)
    before = write_csv(tmp_path / "before.csv", [HEADER, ["old@example.com", "Old", 1]])
    assert h.wait(submit(h, auth, before)).created == 1
    rows = [
        HEADER,
        ["a@example.com", "A", 1],  # line 2, chunk 0
        ["b@example.com", "B\nsecond line", 2],  # lines 3-4: line numbers no longer follow row numbers
        ["b@example.com", "B again", 3],  # line 5, chunk 0: duplicate of line 3
        ["a@example.com", "A again", 4],  # line 6, chunk 1: duplicate of line 2
        ["c@example.com", "C", 5],  # line 7, chunk 1
        ["old@example.com", "Old again", 6],  # line 8: existed before the import
        ["c@example.com", "C again", 7],  # line 9, chunk 2: duplicate of line 7
    ]
    path = write_csv(tmp_path / "dups.csv", rows)
    dry = policy == "dry run"
    ticket = submit(h, auth, path, mode="insert", **({"dry_run": "true"} if dry else {"policy": policy}))
    view = h.wait(ticket)
    assert view.state == "completed" and (view.created, view.failed) == (3, 4)
    failed = {r["line"]: r["error"] for r in _results(h, auth, ticket) if r["outcome"] == "failed"}
    assert failed == {
        5: "duplicate key in file (first at line 3)",
        6: "duplicate key in file (first at line 2)",
        8: 'duplicate key ["old@example.com"]: the record already exists',
        9: "duplicate key in file (first at line 7)",
    }
    written = {'["a@example.com"]': "A", '["b@example.com"]': "B\nsecond line", '["c@example.com"]': "C"}
    recs = h.records("acme")
    assert {k: v["name"] for k, v in recs.items()} == {'["old@example.com"]': "Old", **({} if dry else written)}


@pytest.mark.parametrize("mode", ["update", "replace"])
def test_update_and_replace_keep_the_later_row_and_count_both(harness: Harness, tmp_path: Path, mode: str) -> None:
    h = harness
    auth = native_auth(h)
    rows = [
        HEADER,
        ["a@example.com", "A", 1],
        ["b@example.com", "B", 2],
        ["a@example.com", "A2", 3],  # same chunk as the first a
        ["b@example.com", "B2", 4],  # next chunk
        ["a@example.com", "A3", 5],  # the chunk after that
    ]
    ticket = submit(h, auth, write_csv(tmp_path / "dups.csv", rows), mode=mode)
    view = h.wait(ticket)
    assert view.state == "completed" and view.completed == 5 and view.failed == 0
    assert (view.created, view.updated) == (2, 3)
    outcomes = [r["outcome"] for r in _results(h, auth, ticket)]
    assert outcomes == ["created", "created", "updated", "updated", "updated"]
    recs = h.records("acme")
    assert {k: (v["name"], v.get("age")) for k, v in recs.items()} == {
        '["a@example.com"]': ("A3", 5), '["b@example.com"]': ("B2", 4),
    }
