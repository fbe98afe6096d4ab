"""The whole pipeline on a real worker: embedded (SQLite + in-process) and scaled (PostgreSQL + Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import Harness, contacts, write_csv


def setup(h: Harness) -> str:
    creds = h.tenant("acme")
    h.dataset("acme")
    return str(creds["native"]["token"])


def test_a_csv_upload_lands_every_row_and_reports_counts(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    path = write_csv(tmp_path / "c.csv", contacts(1200))
    resp = harness.upload(token, path, dataset="contacts")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["state"] in ("accepted", "processing") and resp.headers["location"] == f"/imports/{body['id']}"
    view = harness.wait(body["id"])
    assert view.state == "completed"
    assert (view.total_rows, view.created, view.failed) == (1200, 1200, 0)
    recs = harness.records("acme")
    assert len(recs) == 1200
    assert recs['["user7@example.com"]'] == {
        "email": "user7@example.com", "name": "User 7", "age": 27, "balance": "7.50", "active": True, "joined": "2024-01-15",
    }
    status = harness.client.get(f"/imports/{body['id']}", headers={"Authorization": f"Bearer {token}"}).json()
    assert status["state"] == "completed" and status["percentage"] == 100
    assert status["rows"] == {
        "total": 1200, "processed": 1200, "created": 1200, "updated": 0, "unchanged": 0,
        "ignored": 0, "failed": 0, "skipped": 0, "rolled_back": 0,
    }


def _import(h: Harness, token: str, tmp: Path, rows: list[list[Any]], name: str, **fields: Any) -> Any:
    resp = h.upload(token, write_csv(tmp / name, rows), dataset="contacts", **fields)
    assert resp.status_code == 202, resp.text
    return h.wait(resp.json()["id"])


def test_write_modes_insert_update_replace_ignore(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    header = ["email", "name", "age"]
    v = _import(harness, token, tmp_path, [header, ["a@x.io", "A", "1"], ["b@x.io", "B", "2"]], "1.csv", mode="insert")
    assert (v.created, v.failed) == (2, 0)
    v = _import(harness, token, tmp_path, [header, ["a@x.io", "A", "9"], ["c@x.io", "C", "3"]], "2.csv", mode="insert")
    assert (v.created, v.failed) == (1, 1)
    assert harness.records("acme")['["a@x.io"]']["age"] == 1
    # update: partial, missing fields keep their values
    v = _import(harness, token, tmp_path, [["email", "age"], ["a@x.io", "5"], ["b@x.io", "2"], ["d@x.io", "4"]], "3.csv", mode="update")
    assert (v.updated, v.unchanged, v.created) == (1, 1, 1)
    assert harness.records("acme")['["a@x.io"]'] == {"email": "a@x.io", "name": "A", "age": 5}
    # replace: the whole record; absent fields are gone
    v = _import(harness, token, tmp_path, [["email", "age"], ["a@x.io", "6"]], "4.csv", mode="replace")
    assert v.updated == 1
    assert harness.records("acme")['["a@x.io"]'] == {"email": "a@x.io", "age": 6}
    # ignore: existing keys are counted as ignored and untouched
    v = _import(harness, token, tmp_path, [header, ["a@x.io", "Z", "0"], ["e@x.io", "E", "7"]], "5.csv", mode="ignore")
    assert (v.ignored, v.created) == (1, 1)
    assert harness.records("acme")['["a@x.io"]']["age"] == 6


def _with_bad_rows(n: int, bad_every: int) -> list[list[Any]]:
    rows = contacts(n)
    for i in range(1, n + 1):
        if i % bad_every == 0:
            rows[i][2] = "not-a-number"
    return rows


def test_atomic_policy_past_the_threshold_writes_nothing(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    harness_settings_chunk = harness.settings.chunk_size
    n = harness_settings_chunk + 300  # spans two chunks
    v = _import(harness, token, tmp_path, _with_bad_rows(n, 50), "a.csv", policy="atomic", threshold="10")
    assert v.state == "failed" and v.threshold_exceeded
    assert v.failed == 11 and v.rolled_back == 539 and v.skipped == 250
    assert "threshold" in (v.reason or "")
    assert harness.records("acme") == {}


def test_atomic_policy_within_the_threshold_commits_everything_at_once(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    v = _import(harness, token, tmp_path, _with_bad_rows(500, 100), "a.csv", policy="atomic", threshold="1%")
    assert v.state == "completed" and (v.created, v.failed) == (495, 5)
    assert len(harness.records("acme")) == 495


def test_partial_policy_keeps_committed_rows_and_skips_the_rest(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    v = _import(harness, token, tmp_path, _with_bad_rows(1000, 10), "p.csv", policy="partial", threshold="20")
    assert v.state == "failed" and v.threshold_exceeded
    assert v.failed == 21
    assert v.created == 189 and v.skipped == 1000 - 210
    assert len(harness.records("acme")) == 189


def test_percent_threshold_on_partial_policy(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    v = _import(harness, token, tmp_path, _with_bad_rows(100, 10), "p.csv", threshold="5%")
    assert v.state == "failed" and v.failed == 6 and v.skipped == 40


def test_no_threshold_imports_the_good_rows_and_reports_the_bad(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    v = _import(harness, token, tmp_path, _with_bad_rows(100, 10), "p.csv")
    assert v.state == "completed" and (v.created, v.failed) == (90, 10)
    results = harness.client.get(
        f"/imports/{v.ticket}/results?outcome=failed&limit=3", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [i["index"] for i in results["items"]] == [9, 19, 29]
    assert results["items"][0]["line"] == 11
    assert "age" in results["items"][0]["error"] and results["next_offset"] == 3


def test_every_message_delivered_twice_changes_nothing(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 1: a duplicated message is a no-op (the (ticket, chunk) key and the seq guard)."""
    token = setup(harness)
    rt = harness.rt
    original = type(rt).send

    def twice(self: Any, ticket: int, step: Any) -> None:
        original(self, ticket, step)
        original(self, ticket, step)

    monkeypatch.setattr(type(rt), "send", twice)
    v = _import(harness, token, tmp_path, contacts(5000), "d.csv")
    assert v.state == "completed" and v.created == 5000
    assert len(harness.records("acme")) == 5000
    from events import log as event_log
    from events.db import read_tx

    with read_tx(rt.engine) as conn:
        types = [e.event.__class__.__name__ for e in event_log.read(conn, v.ticket)]
    assert v.parsed is not None and v.parsed.chunks == 10
    assert types.count("ChunkApplied") == 10
    assert types.count("ImportCompleted") == 1 and types.count("FileParsed") == 1


def test_cancel_stops_an_import_and_is_in_the_log(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    harness.worker.worker.pause()
    try:
        resp = harness.upload(token, write_csv(tmp_path / "c.csv", contacts(100)), dataset="contacts", policy="atomic")
        ticket = resp.json()["id"]
        out = harness.client.post(f"/imports/{ticket}/cancel", headers={"Authorization": f"Bearer {token}"})
        assert out.status_code == 200 and out.json()["state"] == "canceled"
    finally:
        harness.worker.worker.resume()
    v = harness.wait(ticket)
    assert v.state == "canceled" and v.created == 0
    again = harness.client.post(f"/imports/{ticket}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 409
    assert harness.records("acme") == {}


def test_tenant_isolation_in_the_native_api(harness: Harness, tmp_path: Path) -> None:
    token = setup(harness)
    other = harness.tenant("globex")["native"]["token"]
    resp = harness.upload(token, write_csv(tmp_path / "c.csv", contacts(3)), dataset="contacts")
    ticket = resp.json()["id"]
    harness.wait(ticket)
    hdr = {"Authorization": f"Bearer {other}"}
    assert harness.client.get(f"/imports/{ticket}", headers=hdr).status_code == 404
    assert harness.client.get(f"/imports/{ticket}/results", headers=hdr).status_code == 404
    assert harness.client.post(f"/imports/{ticket}/cancel", headers=hdr).status_code == 404
    assert harness.client.get("/datasets/contacts", headers=hdr).status_code == 404
    assert harness.upload(other, write_csv(tmp_path / "d.csv", contacts(3)), dataset="contacts").status_code == 404
    assert harness.client.get(f"/imports/{ticket}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_records_show_the_key_as_the_key_fields_values(embedded: Harness, tmp_path: Path) -> None:
    token = setup(embedded)
    hdr = {"Authorization": f"Bearer {token}"}
    places = {"fields": [{"name": "region"}, {"name": "id", "type": "integer"}, {"name": "note"}], "key": ["region", "id"]}
    assert embedded.client.put("/datasets/places", json=places, headers=hdr).status_code == 201
    for dataset, rows in (("places", [["region", "id", "note"], ["EU", "1", "a \"quoted\" note"], ["US", "2", "b"]]),
                          ("contacts", contacts(1))):
        resp = embedded.upload(token, write_csv(tmp_path / f"{dataset}.csv", rows), dataset=dataset)
        assert embedded.wait(resp.json()["id"]).state == "completed"
    first = embedded.client.get("/datasets/places/records?limit=1", headers=hdr).json()
    assert first["items"] == [
        {"id": first["items"][0]["id"], "key": {"region": "EU", "id": 1}, "values": {"region": "EU", "id": 1, "note": 'a "quoted" note'}}
    ]
    rest = embedded.client.get(f"/datasets/places/records?after={first['next_after']}", headers=hdr).json()
    assert [i["key"] for i in rest["items"]] == [{"region": "US", "id": 2}] and rest["next_after"] is None
    one = embedded.client.get("/datasets/contacts/records", headers=hdr).json()["items"]
    assert [i["key"] for i in one] == [{"email": "user0@example.com"}]
