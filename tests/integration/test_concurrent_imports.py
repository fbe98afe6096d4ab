"""Imports that write the same dataset at the same time report what the database really did."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.support import Harness, write_csv

KEYS = 3000


def _rows(seed: int, version: int) -> list[list[Any]]:
    """The same KEYS emails in a shuffled order; `version` changes the name so updates change something."""
    order = list(range(KEYS))
    random.Random(seed).shuffle(order)
    return [["email", "name", "age"]] + [[f"u{i}@x.io", f"v{version}", str(i % 90)] for i in order]


@pytest.mark.parametrize("mode", ["insert", "update", "replace", "ignore"])
def test_concurrent_imports_of_the_same_keys_count_each_key_created_once(
    harness: Harness, tmp_path: Path, mode: str
) -> None:
    creds = harness.tenant("acme")
    harness.dataset("acme", schema={
        "fields": [{"name": "email", "type": "email", "required": True},
                   {"name": "name", "type": "string"}, {"name": "age", "type": "integer"}],
        "key": ["email"],
    })
    token = str(creds["native"]["token"])
    harness.worker.worker.pause()  # queue all four first, so their chunks interleave
    tickets = []
    for n in range(4):
        path = write_csv(tmp_path / f"f{n}.csv", _rows(seed=n, version=n % 2))
        resp = harness.upload(token, path, dataset="contacts", mode=mode)
        assert resp.status_code == 202, resp.text
        tickets.append(int(resp.json()["id"]))
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
