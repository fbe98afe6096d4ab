"""Dry runs: the whole pipeline runs and reports exactly what a real run reports, and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from events import records
from events.db import read_tx, write_tx
from events.decisions import Write
from tests.support import CONTACTS_SCHEMA, Harness, contacts, write_csv

MODES = ("insert", "update", "replace", "ignore")


def _file(tmp: Path) -> Path:
    """Rows 300..899 over a dataset holding 0..599: unchanged, updated and new keys, a few bad rows,
    and keys 700..720 again in the second chunk (created by the first, then updated or refused)."""
    rows = contacts(600, start=300)
    for r in rows[1:]:
        i = int(str(r[0])[4:].split("@")[0])
        if i % 3 == 0:
            r[1] = f"Changed {i}"
        if i in (650, 760, 870):
            r[2] = "x"
    again = [[f"user{i}@example.com", f"Again {i}", "nope" if i in (705, 710) else 30, "1.00", "true", "2024-02-01"] for i in range(700, 721)]
    return write_csv(tmp / "file.csv", rows + again)


def _report(h: Harness, auth: dict[str, str], ticket: int) -> dict[str, Any]:
    """Everything a caller sees of a finished import, minus ids and times."""
    view = h.client.get(f"/imports/{ticket}", headers=auth).json()
    results = h.client.get(f"/imports/{ticket}/results?limit=10000", headers=auth).json()
    events = h.client.get(f"/imports/{ticket}/events", headers=auth).json()["events"]
    errors = h.client.get(f"/imports/{ticket}/errors.csv", headers=auth).text
    return {
        "state": view["state"], "rows": view["rows"], "percentage": view["percentage"], "error": view["error"],
        "threshold_exceeded": view["threshold_exceeded"], "results": results["items"], "errors_csv": errors,
        "events": _steps(events),
    }


def _steps(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The log's events as a caller compares them: a dry run's chunks are applied while its file is
    still read (chunks_staged, then file_parsed among the chunk_applied), a partial import's after it."""
    shown = [(e["type"], e.get("runs"), e.get("failures"), e.get("rows"), e.get("skipped")) for e in events
             if e["type"] != "chunks_staged"]
    return sorted(shown, key=lambda e: e[0] not in ("import_requested", "file_stored", "file_parsed"))


def _staged(h: Harness, ticket: int) -> int:
    with read_tx(h.rt.engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM staged WHERE ticket = :t"), {"t": ticket}).scalar() or 0)


@pytest.mark.parametrize("policy", ["partial", "atomic"])
def test_a_dry_run_reports_row_by_row_what_the_real_run_does(harness: Harness, tmp_path: Path, policy: str) -> None:
    auth = {"Authorization": f"Bearer {harness.tenant('acme')['native']['token']}"}
    path = _file(tmp_path)
    seed = write_csv(tmp_path / "seed.csv", contacts(600))
    for mode in MODES:
        for threshold in (None, "3"):
            dataset = f"{mode}_{threshold or 'none'}"
            harness.dataset("acme", dataset, CONTACTS_SCHEMA)
            harness.wait(harness.upload(auth["Authorization"][7:], seed, dataset=dataset).json()["id"])
            before = harness.records("acme", dataset)
            fields: dict[str, Any] = {"dataset": dataset, "mode": mode, "policy": policy}
            if threshold:
                fields["threshold"] = threshold
            dry = harness.upload(auth["Authorization"][7:], path, **fields, dry_run="true")
            assert dry.status_code == 202, dry.text
            assert dry.json()["dry_run"] is True
            dry_id = dry.json()["id"]
            harness.wait(dry_id)
            assert harness.records("acme", dataset) == before, f"{mode}/{threshold}: a dry run wrote records"
            assert _staged(harness, dry_id) == 0
            real = harness.upload(auth["Authorization"][7:], path, **fields)
            assert real.json()["dry_run"] is False
            harness.wait(real.json()["id"])
            dry_report, real_report = _report(harness, auth, dry_id), _report(harness, auth, real.json()["id"])
            assert dry_report == real_report, f"{mode}/{policy}/{threshold}"
            rows = real_report["rows"]
            if threshold:
                assert real_report["threshold_exceeded"] and rows["skipped"] > 0 and rows["failed"] == 4
            else:
                assert real_report["state"] == "completed"
                assert rows["created"] == 297  # keys 600..899, three of them bad rows
                if mode in ("update", "replace"):
                    assert rows["updated"] == 100 + 19  # names changed on 300..599, then 700..720 again (2 bad)
            if mode == "insert" and not threshold:
                assert rows["failed"] == 300 + 3 + 2 + 19  # keys 300..599 exist, bad rows, 700..720 a second time
            if not threshold:
                assert harness.records("acme", dataset) != before  # the real run did write


def test_dry_run_in_json_and_refused_when_not_a_boolean(embedded: Harness, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {embedded.tenant('acme')['native']['token']}"}
    embedded.dataset("acme")
    bad = embedded.upload(auth["Authorization"][7:], write_csv(tmp_path / "a.csv", contacts(2)), dataset="contacts", dry_run="maybe")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "dry_run"
    body = {"dataset": "contacts", "uri": "http://127.0.0.1:9/none.csv", "dry_run": True}
    accepted = embedded.client.post("/imports", json=body, headers=auth)
    assert accepted.status_code == 202 and accepted.json()["dry_run"] is True


def test_canceling_a_partial_dry_run_leaves_no_staging(embedded: Harness, tmp_path: Path) -> None:
    token = str(embedded.tenant("acme")["native"]["token"])
    embedded.dataset("acme")
    embedded.worker.stop()  # nothing runs: the ticket is canceled while its chunks wait
    resp = embedded.upload(token, write_csv(tmp_path / "a.csv", contacts(1200)), dataset="contacts", dry_run="true")
    ticket = resp.json()["id"]
    with write_tx(embedded.rt.engine) as conn:  # as if its first chunk had been applied
        records.write(conn, embedded.rt.ticket(ticket).dataset_id, ticket, resp.json()["uuid"],
                      [Write('["x@y.z"]', {"email": "x@y.z"}, True, 0)], staged=True)
    assert _staged(embedded, ticket) == 1
    canceled = embedded.client.post(f"/imports/{ticket}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert _staged(embedded, ticket) == 0 and canceled.json()["rows"]["rolled_back"] == 0
