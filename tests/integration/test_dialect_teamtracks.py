"""The TeamTracks dialect driven as its doc shows: POST /objectimport/{trackId}, GET /job/{jobId}."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from events import catalog
from events.db import read_tx
from events.projections import ImportView
from events.record_ids import record_uuid
from events.records import list_records
from tests.support import Harness, contacts, write_csv, write_xls, write_xlsx

TRACK = "rma"
STATUS_KEYS = ["finished", "dateFinished", "successfullyCreated", "failedToCreate", "successfullyUpdated", "unchanged", "failedToUpdate"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def tt_headers(creds: dict[str, Any]) -> dict[str, str]:
    """The three headers of the doc's cURL."""
    tt = creds["teamtracks"]
    return {"tenant": tt["tenant"], "Ocp-Apim-Subscription-Key": tt["subscription_key"], "Authorization": f"Bearer {tt['bearer_token']}"}


def setup(h: Harness, name: str = "acme") -> dict[str, str]:
    creds = h.tenant(name)
    h.dataset(name, TRACK)
    return tt_headers(creds)


def post_file(h: Harness, headers: dict[str, str], path: Path, track: str = TRACK, ctype: str = "text/csv") -> Any:
    with path.open("rb") as fh:
        return h.client.post(f"/objectimport/{track}", headers=headers, files={"file": (path.name, fh, ctype)})


def accepted_job(resp: Any) -> str:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == ["jobId"] and isinstance(body["jobId"], str)
    assert str(uuid.UUID(body["jobId"])) == body["jobId"]
    return str(body["jobId"])


def wait_job(h: Harness, tenant: str, job: str) -> ImportView:
    with read_tx(h.rt.engine) as conn:
        t = catalog.tenant_by_name(conn, tenant)
        assert t is not None
        row = catalog.ticket_by_uuid(conn, job, t.id)
    assert row is not None and row.dialect == "teamtracks"
    return h.wait(row.id)


def record_ids(h: Harness, tenant: str, dataset: str = TRACK) -> dict[str, str]:
    """Record uuid by key, straight from the database."""
    with read_tx(h.rt.engine) as conn:
        t = catalog.tenant_by_name(conn, tenant)
        assert t is not None
        ds = catalog.get_dataset(conn, t.id, dataset)
        assert ds is not None
        page, _ = list_records(conn, ds.id, limit=10_000)
    return {r.key: r.id for r in page}


def assert_counts(body: dict[str, Any], view: ImportView) -> None:
    """Every count of the job status, typed, and in agreement with the event log's view."""
    for key in STATUS_KEYS[2:]:
        assert type(body[key]) is int, key
    assert body["successfullyCreated"] == view.created
    assert body["successfullyUpdated"] == view.updated
    assert body["unchanged"] == view.unchanged
    assert body["failedToCreate"] + body["failedToUpdate"] == view.failed
    assert body["failedToUpdate"] == view.failed_existing


def test_xlsx_import_as_in_the_doc_then_job_status(harness: Harness, tmp_path: Path) -> None:
    headers = setup(harness)
    path = write_xlsx(tmp_path / "objects.xlsx", contacts(4))
    job = accepted_job(post_file(harness, headers, path, ctype=XLSX))
    view = wait_job(harness, "acme", job)
    assert view.state == "completed" and view.created == 4 and view.file is not None and view.file.format == "xlsx"

    resp = harness.client.get(f"/job/{job}", headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert list(body) == [*STATUS_KEYS, "objectsCreated", "errors"]
    assert body["finished"] is True
    assert type(body["dateFinished"]) is int
    assert view.finished_at is not None and body["dateFinished"] == int(view.finished_at.timestamp() * 1000)
    assert_counts(body, view)
    assert body["successfullyCreated"] == 4
    ids = record_ids(harness, "acme")
    assert body["objectsCreated"] == [ids[f'["user{i}@example.com"]'] for i in range(4)]
    assert all(str(uuid.UUID(i)) == i for i in body["objectsCreated"])
    assert body["errors"] == []


def test_create_update_unchanged_and_failed_rows(harness: Harness, tmp_path: Path) -> None:
    headers = setup(harness)
    first = [["email", "name", "age"], ["a@x.io", "A", "1"], ["b@x.io", "B", "2"]]
    wait_job(harness, "acme", accepted_job(post_file(harness, headers, write_csv(tmp_path / "1.csv", first))))
    second = [
        ["email", "name", "age"],
        ["a@x.io", "A", "9"],  # updated
        ["b@x.io", "B", "2"],  # unchanged
        ["c@x.io", "C", "3"],  # created
        ["d@x.io", "D", "old"],  # failed: not an integer (line 5)
        ["not-an-email", "E", "5"],  # failed: bad key (line 6)
    ]
    job = accepted_job(post_file(harness, headers, write_csv(tmp_path / "2.csv", second)))
    view = wait_job(harness, "acme", job)
    body = harness.client.get(f"/job/{job}", headers=headers).json()
    assert body["finished"] is True and body["dateFinished"] > 0
    assert_counts(body, view)
    assert (body["successfullyCreated"], body["successfullyUpdated"], body["unchanged"], body["failedToCreate"]) == (1, 1, 1, 2)
    assert body["objectsCreated"] == [record_uuid(job, 2)] == [record_ids(harness, "acme")['["c@x.io"]']]
    assert [e["row"] for e in body["errors"]] == [5, 6]
    assert all(list(e) == ["row", "message"] and type(e["row"]) is int and isinstance(e["message"], str) for e in body["errors"])
    assert "age" in body["errors"][0]["message"] and "email" in body["errors"][1]["message"]
    recs = harness.records("acme", TRACK)
    assert recs['["a@x.io"]']["age"] == 9 and set(recs) == {'["a@x.io"]', '["b@x.io"]', '["c@x.io"]'}


def test_failed_rows_are_failed_updates_when_their_key_names_an_existing_object(harness: Harness, tmp_path: Path) -> None:
    headers = setup(harness)
    first = [["email", "name", "age"], ["a@x.io", "A", "1"], ["b@x.io", "B", "2"]]
    wait_job(harness, "acme", accepted_job(post_file(harness, headers, write_csv(tmp_path / "1.csv", first))))
    second: list[list[str]] = [["email", "name", "age"]]
    second += [[f"n{i}@x.io", f"N{i}", str(i)] for i in range(520)]  # created; chunk 0 ends at row 500
    second += [
        ["a@x.io", "A", "old"],  # line 522, chunk 1: a exists -> failed update
        ["z@x.io", "Z", "old"],  # line 523: z exists nowhere -> failed create
        ["n3@x.io", "N3", "old"],  # line 524: n3 was created by this job's chunk 0 -> failed update
        ["b@x.io", "B", "2.5"],  # line 525: b exists -> failed update
        ["b@x.io", "B", "2", "stray"],  # line 526: refused by the reader, so no cells to read a key from -> failed create
        ["not-an-email", "E", "5"],  # line 527: no readable key -> failed create
        ["", "F", "6"],  # line 528: no key at all -> failed create
        ["c@x.io", "C", "3"],  # line 529: created...
        ["C@X.io", "C", "x"],  # line 530: ...so a failure on the same key (canonically) is a failed update
    ]
    job = accepted_job(post_file(harness, headers, write_csv(tmp_path / "2.csv", second)))
    view = wait_job(harness, "acme", job)
    body = harness.client.get(f"/job/{job}", headers=headers).json()
    assert_counts(body, view)
    assert (body["successfullyCreated"], body["failedToCreate"], body["failedToUpdate"]) == (521, 4, 4)
    assert (body["successfullyUpdated"], body["unchanged"]) == (0, 0)
    assert [e["row"] for e in body["errors"]] == [522, 523, 524, 525, 526, 527, 528, 530]
    recs = harness.records("acme", TRACK)
    assert recs['["a@x.io"]']["age"] == 1 and recs['["b@x.io"]']["age"] == 2 and '["z@x.io"]' not in recs


def test_status_while_the_job_runs_has_only_the_counts(embedded: Harness, tmp_path: Path) -> None:
    headers = setup(embedded)
    embedded.worker.worker.pause()
    try:
        job = accepted_job(post_file(embedded, headers, write_csv(tmp_path / "c.csv", contacts(10))))
        body = embedded.client.get(f"/job/{job}", headers=headers).json()
        assert body == {
            "finished": False, "dateFinished": 0, "successfullyCreated": 0, "failedToCreate": 0,
            "successfullyUpdated": 0, "unchanged": 0, "failedToUpdate": 0,
        }
    finally:
        embedded.worker.worker.resume()
    wait_job(embedded, "acme", job)
    assert embedded.client.get(f"/job/{job}", headers=headers).json()["finished"] is True


def test_xls_and_csv_are_accepted_by_content(embedded: Harness, tmp_path: Path) -> None:
    headers = setup(embedded)
    rows: list[list[Any]] = [["email", "name", "age"], ["a@x.io", "A", 1], ["b@x.io", "B", 2]]
    job = accepted_job(post_file(embedded, headers, write_xls(tmp_path / "o.xls", rows), ctype="application/vnd.ms-excel"))
    view = wait_job(embedded, "acme", job)
    assert view.state == "completed" and view.created == 2 and view.file is not None and view.file.format == "xls"
    # a CSV under a misleading name and content type is still a CSV
    odd = write_csv(tmp_path / "objects.dat", [["email", "age"], ["a@x.io", "7"]])
    view = wait_job(embedded, "acme", accepted_job(post_file(embedded, headers, odd, ctype="application/octet-stream")))
    assert view.updated == 1 and embedded.records("acme", TRACK)['["a@x.io"]']["age"] == 7


def assert_error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == ["statusCode", "message"]
    assert body["statusCode"] == status and isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def test_files_other_than_xlsx_xls_csv_are_400(embedded: Harness, tmp_path: Path) -> None:
    headers = setup(embedded)
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert_error(post_file(embedded, headers, png, ctype="image/png"), 400)
    pdf = tmp_path / "doc.xlsx"  # the name says xlsx, the content does not
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\x01\x02")
    assert_error(post_file(embedded, headers, pdf, ctype=XLSX), 400)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert_error(post_file(embedded, headers, empty), 400)
    nofit = write_csv(tmp_path / "other.csv", [["sku", "qty"], ["x", "1"]])
    assert "field" in assert_error(post_file(embedded, headers, nofit), 400)
    no_file = embedded.client.post(f"/objectimport/{TRACK}", headers=headers, files={"other": ("x", b"a", "text/plain")}, data={"a": "b"})
    assert_error(no_file, 400)
    assert_error(embedded.client.post(f"/objectimport/{TRACK}", headers=headers, json={"file": "x"}), 415)


def test_unknown_track_and_unknown_job_are_404(embedded: Harness, tmp_path: Path) -> None:
    headers = setup(embedded)
    path = write_csv(tmp_path / "c.csv", contacts(2))
    assert "nope" in assert_error(post_file(embedded, headers, path, track="nope"), 404)
    assert_error(embedded.client.get(f"/job/{uuid.uuid4()}", headers=headers), 404)
    assert_error(embedded.client.get("/job/24786e69-262a-4242-9d65", headers=headers), 404)


def test_every_credential_is_checked(embedded: Harness, tmp_path: Path) -> None:
    good = setup(embedded)
    other = tt_headers(embedded.tenant("globex"))
    job = accepted_job(post_file(embedded, good, write_csv(tmp_path / "c.csv", contacts(2))))
    variants = [
        {},
        {k: v for k, v in good.items() if k != "tenant"},
        {k: v for k, v in good.items() if k != "Ocp-Apim-Subscription-Key"},
        {k: v for k, v in good.items() if k != "Authorization"},
        {**good, "Ocp-Apim-Subscription-Key": "0" * 32},
        {**good, "Authorization": "Bearer ttb_wrong"},
        {**good, "Authorization": good["Authorization"].replace("Bearer", "Basic")},
        {**good, "Authorization": other["Authorization"]},  # another tenant's bearer
        {**good, "tenant": other["tenant"]},  # another tenant id with this key
        {**other, "Ocp-Apim-Subscription-Key": good["Ocp-Apim-Subscription-Key"]},
    ]
    for headers in variants:
        assert_error(post_file(embedded, headers, write_csv(tmp_path / "d.csv", contacts(1))), 401)
        assert_error(embedded.client.get(f"/job/{job}", headers=headers), 401)
    assert "subscription key" in assert_error(embedded.client.get(f"/job/{job}", headers={}), 401)


def test_another_tenants_job_is_404(harness: Harness, tmp_path: Path) -> None:
    mine = setup(harness)
    theirs = setup(harness, "globex")
    job = accepted_job(post_file(harness, mine, write_csv(tmp_path / "c.csv", contacts(3))))
    wait_job(harness, "acme", job)
    assert_error(harness.client.get(f"/job/{job}", headers=theirs), 404)
    assert harness.client.get(f"/job/{job}", headers=mine).json()["successfullyCreated"] == 3
    assert harness.records("globex", TRACK) == {}


def test_same_records_as_the_native_api(harness: Harness, tmp_path: Path) -> None:
    headers = setup(harness)
    native = harness.tenant("globex")["native"]["token"]
    harness.dataset("globex", TRACK)
    rows = contacts(700)
    rows[10][2] = "x"  # one bad row in both
    path = write_csv(tmp_path / "c.csv", rows)
    tt_view = wait_job(harness, "acme", accepted_job(post_file(harness, headers, path)))
    resp = harness.upload(native, path, dataset=TRACK)
    assert resp.status_code == 202, resp.text
    native_view = harness.wait(resp.json()["id"])
    assert (tt_view.created, tt_view.failed) == (native_view.created, native_view.failed) == (699, 1)
    assert harness.records("acme", TRACK) == harness.records("globex", TRACK)


def test_too_large_uploads_are_413(tmp_path: Path) -> None:
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'small.db'}", max_upload_bytes=4096)
    try:
        headers = setup(h)
        assert_error(post_file(h, headers, write_csv(tmp_path / "big.csv", contacts(500))), 413)
    finally:
        h.stop()


def test_unexpected_errors_are_500_in_the_dialect_shape(embedded: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = setup(embedded)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.service.find_ticket_by_uuid", broken)
    message = assert_error(embedded.client.get(f"/job/{uuid.uuid4()}", headers=headers), 500)
    assert "boom" not in message


def test_openapi_lists_the_endpoints_and_their_parameters(embedded: Harness) -> None:
    paths = embedded.client.get("/schema/openapi.json").json()["paths"]
    post = paths["/objectimport/{trackId}"]["post"]
    get = paths["/job/{jobId}"]["get"]
    for op, path_param in ((post, "trackId"), (get, "jobId")):
        params = {(p["in"], p["name"]): p["required"] for p in op["parameters"]}
        assert params == {
            ("path", path_param): True, ("header", "tenant"): True,
            ("header", "Ocp-Apim-Subscription-Key"): True, ("header", "Authorization"): True,
        }
    assert {"200", "401", "404"} <= set(get["responses"])
