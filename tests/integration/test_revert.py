"""Revert: a completed import undone through the service, chunk by chunk, exactly once, without clobbering later imports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from actors import faults, revert_chunk
from actors.remove_expired import remove_expired
from actors.resume import resume
from events import before_images
from events.db import read_tx, write_tx
from events.log import append, now, read, unfinished_tickets
from events.types import RevertRequested
from tests.support import Harness, contacts, write_csv
from tests.support.waiting import wait_for

Auth = dict[str, str]


def _setup(h: Harness) -> Auth:
    """A tenant with the contacts dataset; the native Authorization header."""
    creds = h.tenant("acme")
    h.dataset("acme")
    return {"Authorization": f"Bearer {creds['native']['token']}"}


def _import(h: Harness, auth: Auth, path: Path, **fields: Any) -> int:
    """Upload through POST /imports and wait until the import ends; its ticket."""
    resp = h.upload(auth["Authorization"][7:], path, dataset="contacts", **fields)
    assert resp.status_code == 202, resp.text
    ticket = int(resp.json()["id"])
    assert h.wait(ticket).state == "completed"
    return ticket


def _changed(tmp: Path, name: str, start: int, n: int, label: str) -> Path:
    """Rows start..start+n with every name changed to `label N`."""
    rows = contacts(n, start=start)
    for r in rows[1:]:
        r[1] = f"{label} {str(r[0])[4:].split('@')[0]}"
    return write_csv(tmp / name, rows)


def _key(i: int) -> str:
    """A contact's record key as the dataset stores it."""
    return f'["user{i}@example.com"]'


def _revert(h: Harness, auth: Auth, ticket: int, force: bool = False) -> dict[str, Any]:
    """POST /imports/{id}/revert, wait on the log until the revert is done; the ticket's native view."""
    resp = h.client.post(f"/imports/{ticket}/revert" + ("?force=true" if force else ""), headers=auth)
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"/imports/{ticket}"
    wait_for(h.rt, ticket, lambda v: v.state == "reverted", "the revert to finish")
    view: dict[str, Any] = h.client.get(f"/imports/{ticket}", headers=auth).json()
    return view


def _types(h: Harness, ticket: int) -> list[str]:
    with read_tx(h.rt.engine) as conn:
        return [type(s.event).__struct_config__.tag for s in read(conn, ticket)]  # type: ignore[misc]


def test_reverting_creates_updates_and_replaces_restores_exactly_the_previous_records(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    _import(harness, auth, write_csv(tmp_path / "seed.csv", contacts(600)))
    seed = harness.records("acme")
    # 300..599 updated, 600..899 created; keys 700..720 twice (created, then updated by the same import)
    rows = contacts(600, start=300) + [r for r in contacts(21, start=700)[1:]]
    for r in rows[1:]:
        r[1] = f"Updated {str(r[0])[4:].split('@')[0]}"
    updating = write_csv(tmp_path / "b.csv", rows)
    updated = _import(harness, auth, updating)
    after_update = harness.records("acme")
    assert len(after_update) == 900 and after_update[_key(300)]["name"] == "Updated 300"
    # replace 0..99 with only email and name: their other fields go; atomic, so before-images come from the merge
    replacing = write_csv(tmp_path / "c.csv", [["email", "name"], *[[f"user{i}@example.com", f"Only {i}"] for i in range(100)]])
    replaced = _import(harness, auth, replacing, mode="replace", policy="atomic")
    assert harness.records("acme")[_key(5)].get("age") is None

    view = _revert(harness, auth, replaced)
    assert view["state"] == "reverted" and view["revert"] == {"deleted": 0, "restored": 100, "conflicts": 0}
    assert harness.records("acme") == after_update
    view = _revert(harness, auth, updated)
    assert view["revert"] == {"deleted": 300, "restored": 300, "conflicts": 0}
    assert harness.records("acme") == seed
    types = _types(harness, updated)
    assert types[-4:] == ["revert_requested", "revert_chunk_applied", "revert_chunk_applied", "import_reverted"]


def test_records_a_later_import_changed_are_conflicts_left_alone_unless_forced(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    _import(harness, auth, write_csv(tmp_path / "seed.csv", contacts(300)))
    seed = harness.records("acme")
    first = _import(harness, auth, _changed(tmp_path, "a.csv", 0, 300, "First"))
    after_first = harness.records("acme")
    later = _import(harness, auth, _changed(tmp_path, "b.csv", 0, 50, "Later"))
    after_later = harness.records("acme")
    touched = {_key(i) for i in range(50)}

    view = _revert(harness, auth, first)
    assert view["revert"] == {"deleted": 0, "restored": 250, "conflicts": 50}
    now = harness.records("acme")
    assert {k: v for k, v in now.items() if k in touched} == {k: v for k, v in after_later.items() if k in touched}
    assert {k: v for k, v in now.items() if k not in touched} == {k: v for k, v in seed.items() if k not in touched}
    # the later import is still its records' last writer: it reverts cleanly to what it found
    assert _revert(harness, auth, later)["revert"] == {"deleted": 0, "restored": 50, "conflicts": 0}
    pre = harness.records("acme")
    assert {k: v for k, v in pre.items() if k in touched} == {k: v for k, v in after_first.items() if k in touched}

    forced = _import(harness, auth, _changed(tmp_path, "c.csv", 0, 300, "Forced"))
    _import(harness, auth, _changed(tmp_path, "d.csv", 0, 10, "Meddled"))
    _import(harness, auth, write_csv(tmp_path / "e.csv", contacts(5, start=1000)))  # other keys: not the revert's
    view = _revert(harness, auth, forced, force=True)
    assert view["revert"] == {"deleted": 0, "restored": 300, "conflicts": 0}
    final = harness.records("acme")
    others = {_key(i) for i in range(1000, 1005)}
    assert {k: v for k, v in final.items() if k not in others} == pre  # the meddled ten are undone too
    assert others <= set(final)


def test_reverts_that_cannot_be_done_are_409s_with_a_reason(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    done = _import(harness, auth, write_csv(tmp_path / "a.csv", contacts(20)))
    dry = _import(harness, auth, write_csv(tmp_path / "b.csv", contacts(20, start=50)), dry_run="true")
    bad_rows = contacts(20, start=100)
    for r in bad_rows[1:]:
        r[2] = "nope"
    failed = harness.upload(auth["Authorization"][7:], write_csv(tmp_path / "c.csv", bad_rows), dataset="contacts", threshold="1").json()["id"]
    assert harness.wait(failed).state == "failed"

    def refused(ticket: int) -> tuple[int, str, str]:
        resp = harness.client.post(f"/imports/{ticket}/revert", headers=auth)
        error = resp.json()["error"]
        return resp.status_code, error["code"], error["message"]

    assert refused(dry) == (409, "dry_run", f"import {dry} cannot be reverted: it was a dry run and wrote no record")
    status, code, message = refused(failed)
    assert (status, code) == (409, "not_completed") and "this one is failed" in message
    _revert(harness, auth, done)
    status, code, message = refused(done)
    assert (status, code) == (409, "already_reverted") and "already reverted" in message
    assert harness.client.post("/imports/4242/revert", headers=auth).status_code == 404
    assert harness.records("acme") == {}


def test_a_crashed_or_redelivered_revert_chunk_changes_nothing_twice(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    _import(harness, auth, write_csv(tmp_path / "seed.csv", contacts(400)))
    seed = harness.records("acme")
    ticket = _import(harness, auth, _changed(tmp_path, "a.csv", 200, 1200, "Changed"))  # 200 updated, 1000 created
    faults.arm("revert_chunk:1:before_commit:raise")  # the second chunk's transaction fails once, then is retried
    try:
        view = _revert(harness, auth, ticket)
    finally:
        faults.disarm()
    assert view["revert"] == {"deleted": 1000, "restored": 200, "conflicts": 0}
    assert harness.records("acme") == seed
    types = _types(harness, ticket)
    assert types.count("revert_chunk_applied") == 3 and types[-1] == "import_reverted"
    for chunk in (0, 1, 2, 3):  # late duplicates of every message: nothing more happens
        revert_chunk.run(harness.rt, ticket, chunk)
    assert _types(harness, ticket) == types
    assert harness.records("acme") == seed


def test_a_revert_requested_but_never_enqueued_is_found_and_finished_by_resume(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    ticket = _import(harness, auth, write_csv(tmp_path / "a.csv", contacts(700)))
    with read_tx(harness.rt.engine) as conn:
        assert ticket not in unfinished_tickets(conn)
    view = harness.rt.view(ticket)
    assert view is not None
    with write_tx(harness.rt.engine) as conn:  # the request committed, then the process died before enqueueing
        append(conn, ticket, view.seq, [RevertRequested(at=now())])
    with read_tx(harness.rt.engine) as conn:
        assert ticket in unfinished_tickets(conn)
    assert ticket in resume(harness.rt)
    done = wait_for(harness.rt, ticket, lambda v: v.state == "reverted", "the resumed revert to finish")
    assert done.revert is not None and (done.revert.chunks, done.revert.deleted, done.revert.conflicts) == (2, 700, 0)
    assert harness.records("acme") == {}
    with read_tx(harness.rt.engine) as conn:
        assert ticket not in unfinished_tickets(conn)


def test_revert_from_the_command_line_with_and_without_force(embedded: Harness, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    auth = _setup(embedded)
    plain = _import(embedded, auth, write_csv(tmp_path / "a.csv", contacts(30)))
    forced = _import(embedded, auth, write_csv(tmp_path / "b.csv", contacts(10, start=100)))
    _import(embedded, auth, _changed(tmp_path, "c.csv", 0, 5, "Later"))
    _import(embedded, auth, _changed(tmp_path, "d.csv", 100, 2, "Later"))
    with embedded.served() as url:
        env = {"IMPORTER_URL": url, "IMPORTER_TOKEN": auth["Authorization"][7:]}
        done = CliRunner().invoke(cli, ["revert", str(plain), "--wait"], env=env)
        assert done.exit_code == 0, done.output
        assert "reverted: deleted 25, restored 0, conflicts 5" in done.output
        assert set(embedded.records("acme")) == {_key(i) for i in (0, 1, 2, 3, 4, *range(100, 110))}
        done = CliRunner().invoke(cli, ["revert", str(forced), "--force", "--wait"], env=env)
        assert done.exit_code == 0, done.output
        assert "reverted: deleted 10, restored 0, conflicts 0" in done.output
        assert set(embedded.records("acme")) == {_key(i) for i in range(5)}
        again = CliRunner().invoke(cli, ["revert", str(plain)], env=env)
        assert again.exit_code == 2 and "409" in again.output and "already reverted" in again.output


def test_once_retention_removes_the_file_the_before_images_go_too_and_revert_is_refused(
    embedded: Harness, tmp_path: Path
) -> None:
    """Before-images are about one copy of every record an import touched: they are kept as long as
    the import's file (IMPORTER_BLOB_RETENTION_HOURS), not forever."""
    auth = _setup(embedded)
    created = _import(embedded, auth, write_csv(tmp_path / "a.csv", contacts(30)))
    ticket = _import(embedded, auth, _changed(tmp_path, "b.csv", 0, 40, "Changed"))  # 30 updated, 10 created
    with read_tx(embedded.rt.engine) as conn:  # an image for each record there before; created ones need none
        assert (before_images.count(conn, created), before_images.count(conn, ticket)) == (0, 30)
    changed = embedded.records("acme")
    later = datetime.now(UTC) + timedelta(hours=embedded.settings.blob_retention_hours + 1)
    assert remove_expired(embedded.rt, at=later) == [created, ticket]
    with read_tx(embedded.rt.engine) as conn:
        assert before_images.count(conn, ticket) == 0
    for gone in (created, ticket):
        refused = embedded.client.post(f"/imports/{gone}/revert", headers=auth)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_revertible", refused.text
    assert embedded.records("acme") == changed  # nothing was undone


def test_an_import_whose_log_kept_images_of_created_records_reverts_each_record_once(
    harness: Harness, tmp_path: Path
) -> None:
    """Imports applied before lean images kept an empty image for every record they created: a revert
    deletes such a record through its image and does not count it again with the created records."""
    auth = _setup(harness)
    ticket = _import(harness, auth, write_csv(tmp_path / "a.csv", contacts(30)))
    with write_tx(harness.rt.engine) as conn:
        for i in range(10):
            conn.execute(
                sa.text("INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) VALUES (:t, :k, NULL, NULL, NULL)"),
                {"t": ticket, "k": _key(i)},
            )
    _import(harness, auth, _changed(tmp_path, "b.csv", 0, 2, "Later"))  # two of them changed since: conflicts
    view = _revert(harness, auth, ticket)
    assert view["revert"] == {"deleted": 28, "restored": 0, "conflicts": 2}
    assert set(harness.records("acme")) == {_key(0), _key(1)}


def test_a_revert_step_that_fails_for_good_stops_the_revert_saying_why_and_asking_again_goes_on(
    harness: Harness, tmp_path: Path
) -> None:
    auth = _setup(harness)
    _import(harness, auth, write_csv(tmp_path / "seed.csv", contacts(400)))
    seed = harness.records("acme")
    ticket = _import(harness, auth, _changed(tmp_path, "a.csv", 200, 1200, "Changed"))  # 200 updated, 1000 created
    faults.arm("revert_chunk:1:before_commit:always")  # the second chunk fails every time: retries run out
    try:
        resp = harness.client.post(f"/imports/{ticket}/revert", headers=auth)
        assert resp.status_code == 202, resp.text
        stopped = wait_for(harness.rt, ticket, lambda v: v.revert is not None and v.revert.failed is not None,
                           "the revert to stop")
    finally:
        faults.disarm()
    assert stopped.state == "completed" and stopped.revert is not None and stopped.revert.chunks == 1
    assert stopped.revert.failed is not None and "revert_chunk" in stopped.revert.failed
    assert "FaultInjected" in stopped.revert.failed
    shown = harness.client.get(f"/imports/{ticket}", headers=auth).json()
    assert (shown["state"], shown["revert"]["restored"], shown["revert"]["failed"]) == ("completed", 200, stopped.revert.failed)
    assert ticket not in resume(harness.rt)  # a stopped revert is not re-driven forever
    partly = harness.records("acme")
    assert {k: partly[k] for k in seed} == seed  # the first chunk put the images back
    assert stopped.revert.deleted < 1000 and len(partly) == 1400 - stopped.revert.deleted  # created records not all gone
    view = _revert(harness, auth, ticket)  # asked again: it goes on from where it stopped
    assert view["state"] == "reverted" and view["revert"] == {"deleted": 1000, "restored": 200, "conflicts": 0}
    assert harness.records("acme") == seed
    types = _types(harness, ticket)
    assert types.count("revert_failed") == 1 and types.count("revert_chunk_applied") == 3 and types[-1] == "import_reverted"
