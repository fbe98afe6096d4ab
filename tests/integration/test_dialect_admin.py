"""The admin-batch dialect driven as its doc shows: batch, file upload, GetImportEntries, result file."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from msgspec.structs import replace

from app.reports import escape_cell
from events import catalog
from events import log as event_log
from events.db import read_tx
from events.projections import ImportView
from events.tables import tickets
from events.types import FileRefused
from tests.support import Harness, write_csv, write_xls

TRANSACTIONS = {
    "fields": [
        {"name": "TransactionId", "type": "string", "required": True},
        {"name": "Amount", "type": "decimal", "required": True},
        {"name": "Currency", "type": "string"},
        {"name": "BookedOn", "type": "date"},
        {"name": "Memo", "type": "string"},
    ],
    "key": ["TransactionId"],
}
HEADER = ["TransactionId", "Amount", "Currency", "BookedOn", "Memo"]
ENTRIES_KEYS = [
    "success", "code", "errorMessage", "batchId", "type", "status", "totalRows", "processedRows", "createdRows",
    "updatedRows", "unchangedRows", "failedRows", "skippedRows", "failureReason", "page", "pageSize", "totalCount",
    "totalPages", "entries",
]
OK = {"success": True, "code": 200, "errorMessage": None}


def txns(n: int, start: int = 0) -> list[list[Any]]:
    rows: list[list[Any]] = [HEADER]
    for i in range(start, start + n):
        rows.append([f"T{i:05d}", f"{i}.25", "EUR", "2024-03-01", f"payment {i}"])
    return rows


def setup(h: Harness, name: str = "acme") -> dict[str, str]:
    creds = h.tenant(name)
    h.dataset(name, "transactions", TRANSACTIONS)
    return {"Authorization": f"Bearer {creds['admin']['bearer_token']}"}


def new_batch(h: Harness, auth: dict[str, str], **body: Any) -> str:
    resp = h.client.post("/api/adm/import/batch", headers=auth, json=body or {"Type": "Transactions"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert list(out) == ["success", "code", "errorMessage", "batchId"]
    assert {k: out[k] for k in OK} == OK and type(out["code"]) is int
    assert str(uuid.UUID(out["batchId"])) == out["batchId"]
    return str(out["batchId"])


def upload(h: Harness, auth: dict[str, str], query: str, path: Path, url: str = "/api/adm/import/file") -> Any:
    with path.open("rb") as fh:
        return h.client.post(f"{url}?{query}", headers=auth, files={"file": (path.name, fh, "text/csv")})


def assert_ok(resp: Any) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.json() == OK and list(resp.json()) == ["success", "code", "errorMessage"]


def assert_failure(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == ["success", "code", "errorMessage"]
    assert body["success"] is False and body["code"] == status and type(body["code"]) is int
    assert isinstance(body["errorMessage"], str) and body["errorMessage"]
    return str(body["errorMessage"])


def batch_view(h: Harness, tenant: str, batch: str) -> ImportView:
    with read_tx(h.rt.engine) as conn:
        t = catalog.tenant_by_name(conn, tenant)
        assert t is not None
        row = catalog.ticket_by_dedup(conn, t.id, f"batch:{batch}")
    assert row is not None and row.dialect == "admin"
    return h.wait(row.id)


def entries(h: Harness, auth: dict[str, str], query: str) -> dict[str, Any]:
    resp = h.client.get(f"/api/adm/import/entries?{query}", headers=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert list(body) == ENTRIES_KEYS and {k: body[k] for k in OK} == OK
    return body


def assert_counts(body: dict[str, Any], view: ImportView) -> None:
    """Every count of GetImportEntries, typed, and in agreement with the event log's view."""
    assert (body["totalRows"], body["processedRows"], body["createdRows"], body["updatedRows"]) == (
        view.total_rows, view.processed, view.created, view.updated,
    )
    assert (body["unchangedRows"], body["failedRows"], body["skippedRows"], body["totalCount"]) == (
        view.unchanged, view.failed, view.skipped, view.rows_seen,
    )
    for key in ("processedRows", "createdRows", "updatedRows", "unchangedRows", "failedRows", "skippedRows", "page", "pageSize", "totalCount", "totalPages"):
        assert type(body[key]) is int, key


def test_the_doc_example_upload_then_entries(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    batch = new_batch(harness, auth)
    assert_ok(upload(harness, auth, f"batchId={batch}", write_csv(tmp_path / "t.csv", txns(3)), url="/api/admin/importBatches/file"))
    view = batch_view(harness, "acme", batch)
    assert view.state == "completed" and view.created == 3 and view.spec is not None
    assert (view.spec.mode, view.spec.policy, view.spec.dataset) == ("update", "partial", "transactions")
    body = entries(harness, auth, f"batchId={batch}")
    assert_counts(body, view)
    assert (body["batchId"], body["type"], body["status"], body["failureReason"]) == (batch, "Transactions", "Completed", None)
    assert (body["page"], body["pageSize"], body["totalCount"], body["totalPages"]) == (1, 100, 3, 1)
    assert body["entries"] == [
        {"rowNumber": i, "line": None, "status": "Created", "errorMessage": None} for i in (1, 2, 3)
    ]
    assert harness.records("acme", "transactions")['["T00001"]'] == {
        "TransactionId": "T00001", "Amount": "1.25", "Currency": "EUR", "BookedOn": "2024-03-01", "Memo": "payment 1",
    }


def test_every_documented_query_parameter_and_partial_policy(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    company, project = str(uuid.uuid4()), str(uuid.uuid4())
    batch = new_batch(harness, auth, Type="Transactions", CompanyId=company, CompanyProjectId=project)
    rows = txns(1200)
    for i in (5, 600, 1100):
        rows[i][1] = "lots"  # not a decimal: these rows fail, the rest stay
    query = f"BatchId={batch}&Type=Transactions&CompanyId={company}&CompanyProjectId={project}"
    assert_ok(upload(harness, auth, query, write_csv(tmp_path / "t.csv", rows)))
    view = batch_view(harness, "acme", batch)
    assert view.state == "completed" and (view.created, view.failed) == (1197, 3)
    assert len(harness.records("acme", "transactions")) == 1197
    body = entries(harness, auth, f"BatchId={batch}&Page=1&PageSize=10")
    assert_counts(body, view)
    assert (body["status"], body["totalPages"], len(body["entries"])) == ("Completed", 120, 10)
    failed = entries(harness, auth, f"batchId={batch}&page=1&pageSize=1200")["entries"]
    bad = [e for e in failed if e["status"] == "Failed"]
    assert [(e["rowNumber"], e["line"]) for e in bad] == [(5, 6), (600, 601), (1100, 1101)]
    assert all(isinstance(e["errorMessage"], str) and "Amount" in e["errorMessage"] for e in bad)
    assert view.spec is not None and view.spec.extra == {
        "batchId": batch, "type": "Transactions", "companyId": company, "companyProjectId": project,
    }


def test_a_second_upload_to_the_same_batch_is_deduplicated(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    batch = new_batch(harness, auth)
    assert_ok(upload(harness, auth, f"batchId={batch}", write_csv(tmp_path / "a.csv", txns(5))))
    first = batch_view(harness, "acme", batch)
    second = upload(harness, auth, f"batchId={batch}", write_csv(tmp_path / "b.csv", txns(5, start=100)))
    assert second.status_code == 200 and list(second.json()) == ["success", "code", "errorMessage"]
    body = second.json()
    assert (body["success"], body["code"]) == (True, 200)  # the doc's answer for an accepted upload...
    assert "not imported" in body["errorMessage"]  # ...but it says this file was kept out
    assert batch_view(harness, "acme", batch).ticket == first.ticket
    with read_tx(harness.rt.engine) as conn:
        logged = [s.event for s in event_log.read(conn, first.ticket)]
    refused = [e for e in logged if isinstance(e, FileRefused)]
    assert len(refused) == 1 and refused[0].filename == "b.csv" and "not imported" in refused[0].reason
    assert refused[0].size == (tmp_path / "b.csv").stat().st_size
    after = batch_view(harness, "acme", batch)
    assert after.seq == first.seq + 1 and replace(after, seq=first.seq) == first  # nothing a caller sees changed
    assert entries(harness, auth, f"batchId={batch}")["createdRows"] == 5
    with read_tx(harness.rt.engine) as conn:
        assert len(conn.execute(tickets.select()).all()) == 1
    assert sorted(harness.records("acme", "transactions")) == [f'["T{i:05d}"]' for i in range(5)]


def test_entries_pagination_and_a_batch_without_its_file(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    batch = new_batch(embedded, auth, type="transactions")  # enum names in any casing
    body = entries(embedded, auth, f"batchId={batch}")
    assert (body["status"], body["totalRows"], body["totalCount"], body["totalPages"], body["entries"]) == ("Created", None, 0, 0, [])
    assert_failure(embedded.client.get(f"/api/adm/import/result?batchId={batch}", headers=auth), 404)
    assert_ok(upload(embedded, auth, f"batchid={batch}", write_csv(tmp_path / "t.csv", txns(250))))
    batch_view(embedded, "acme", batch)
    page = entries(embedded, auth, f"batchId={batch}&page=2&pageSize=100")
    assert [e["rowNumber"] for e in page["entries"]] == list(range(101, 201))
    assert page["totalPages"] == 3 and page["page"] == 2 and page["pageSize"] == 100
    assert entries(embedded, auth, f"batchId={batch}&page=9")["entries"] == []
    alias = embedded.client.get(f"/api/admin/importBatches/entries?BATCHID={batch}&page=3&pagesize=100", headers=auth).json()
    assert [e["rowNumber"] for e in alias["entries"]] == list(range(201, 251))
    for bad in ("page=0", "page=x", "pageSize=0", "pageSize=100000", "PageSize=abc"):
        assert_failure(embedded.client.get(f"/api/adm/import/entries?batchId={batch}&{bad}", headers=auth), 400)


def test_result_file_streams_the_input_rows_with_status_and_escapes_formulas(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    batch = new_batch(harness, auth)
    rows = [
        HEADER,
        ["T1", "10.00", "EUR", "2024-01-01", "=HYPERLINK(\"http://evil\",\"x\")"],
        ["T2", "-5.00", "EUR", "2024-01-02", "+1+1"],
        ["T3", "oops", "EUR", "2024-01-03", "@SUM(A1)"],
        ["T4", "1.00", "EUR", "2024-01-04", "\tTabbed"],
        ["T5", "2.00", "EUR", "2024-01-05", "plain"],
    ]
    rows += [[f"X{i}", "1.00", "EUR", "2024-01-05", "bulk"] for i in range(1200)]
    assert_ok(upload(harness, auth, f"batchId={batch}", write_csv(tmp_path / "t.csv", rows)))
    view = batch_view(harness, "acme", batch)
    assert (view.created, view.failed) == (1204, 1)
    resp = harness.client.get(f"/api/adm/import/result?batchId={batch}", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"  # the charset once
    assert "content-length" not in resp.headers  # streamed, not built whole
    assert f"import-result-{batch}.csv" in resp.headers["content-disposition"]
    out = list(csv.reader(io.StringIO(resp.content.decode("utf-8"))))
    assert out[0] == [*HEADER, "ImportStatus", "ImportError"]
    assert out[1] == ["T1", "10.00", "EUR", "2024-01-01", "'=HYPERLINK(\"http://evil\",\"x\")", "Created", ""]
    assert out[2] == ["T2", "'-5.00", "EUR", "2024-01-02", "'+1+1", "Created", ""]
    assert out[3][:6] == ["T3", "oops", "EUR", "2024-01-03", "'@SUM(A1)", "Failed"] and "Amount" in out[3][6]
    assert out[4][4] == "'\tTabbed" and out[5][4:] == ["plain", "Created", ""]
    assert len(out) == 1 + 1205 and all(r[5] == "Created" for r in out[6:])
    alias = harness.client.get(f"/api/admin/importBatches/result?BatchId={batch}", headers=auth)
    assert alias.content == resp.content


def test_escape_cell_covers_every_formula_lead() -> None:
    for lead in ("=", "+", "-", "@", "\t", "\r", "\0"):
        assert escape_cell(f"{lead}1") == f"'{lead}1"
    assert (escape_cell("a=1"), escape_cell(""), escape_cell(None)) == ("a=1", "", "")


def test_refusals_in_the_base_command_response_shape(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    batch = new_batch(embedded, auth)
    good = write_csv(tmp_path / "t.csv", txns(2))
    assert_failure(upload(embedded, auth, f"batchId={uuid.uuid4()}", good), 404)
    assert_failure(upload(embedded, auth, "batchId=9ef15c43-a955-6f4h-c7g3-1h6d4f0e3g9c", good), 404)  # the doc's own example id
    assert_failure(upload(embedded, auth, "", good), 400)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in txns(2):
        ws.append(row)
    wb.save(tmp_path / "t.xlsx")
    assert "not valid CSV" in assert_failure(upload(embedded, auth, f"batchId={batch}", tmp_path / "t.xlsx"), 400)
    assert "not valid CSV" in assert_failure(upload(embedded, auth, f"batchId={batch}", write_xls(tmp_path / "t.xls", txns(2))), 400)
    binary = tmp_path / "t.bin"
    binary.write_bytes(b"\x00\x01\x02\x03PK" * 100)
    assert "not valid CSV" in assert_failure(upload(embedded, auth, f"batchId={batch}", binary), 400)
    missing = write_csv(tmp_path / "m.csv", [["TransactionId", "Currency"], ["T1", "EUR"]])
    assert "Amount" in assert_failure(upload(embedded, auth, f"batchId={batch}", missing), 400)
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    assert_failure(upload(embedded, auth, f"batchId={batch}", empty), 400)
    no_file = embedded.client.post(f"/api/adm/import/file?batchId={batch}", headers=auth, files={"Name": (None, "x")})
    assert_failure(no_file, 400)
    assert_failure(upload(embedded, auth, f"batchId={batch}&Type=PaymentsInfo", good), 400)
    assert_failure(upload(embedded, auth, f"batchId={batch}&Type=Users", good), 400)
    assert_failure(upload(embedded, auth, f"batchId={batch}&CompanyId=nope", good), 400)
    with read_tx(embedded.rt.engine) as conn:
        assert conn.execute(tickets.select()).all() == []  # nothing refused was imported
    # ... and the batch still takes a good file afterwards
    assert_ok(upload(embedded, auth, f"batchId={batch}", good))
    assert batch_view(embedded, "acme", batch).created == 2


def test_batch_creation_refusals(embedded: Harness) -> None:
    auth = setup(embedded)
    url = "/api/adm/import/batch"
    company = str(uuid.uuid4())
    resp = embedded.client.post(f"{url}?Type=Transactions&CompanyId={company}", headers=auth)
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert "Type" in assert_failure(embedded.client.post(url, headers=auth, json={}), 400)
    assert_failure(embedded.client.post(url, headers=auth, json={"Type": "Users"}), 400)
    assert_failure(embedded.client.post(url, headers=auth, json={"Type": "Transactions", "CompanyId": "x"}), 400)
    assert_failure(embedded.client.post(url, headers=auth, json={"Type": 3}), 400)
    bad_json = embedded.client.post(url, headers={**auth, "Content-Type": "application/json"}, content=b"{not json")
    assert_failure(bad_json, 400)
    # a known type whose dataset this tenant has not defined
    assert "payments_info" in assert_failure(embedded.client.post(url, headers=auth, json={"Type": "PaymentsInfo"}), 400)


def test_credentials_and_tenant_isolation(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    other = setup(harness, "globex")
    native = {"Authorization": f"Bearer {harness.tenant('initech')['native']['token']}"}
    batch = new_batch(harness, auth)
    assert_ok(upload(harness, auth, f"batchId={batch}", write_csv(tmp_path / "t.csv", txns(3))))
    batch_view(harness, "acme", batch)
    calls: list[Callable[[dict[str, str]], Any]] = [
        lambda h: harness.client.post("/api/adm/import/batch", headers=h, json={"Type": "Transactions"}),
        lambda h: upload(harness, h, f"batchId={batch}", tmp_path / "t.csv"),
        lambda h: harness.client.get(f"/api/adm/import/entries?batchId={batch}", headers=h),
        lambda h: harness.client.get(f"/api/adm/import/result?batchId={batch}", headers=h),
    ]
    for call in calls:
        for creds in ({}, {"Authorization": "Bearer adm_wrong"}, {"Authorization": "Basic x"}, native):
            assert_failure(call(creds), 401)
    for call in calls[1:]:
        assert "No import batch" in assert_failure(call(other), 404)
    assert harness.records("globex", "transactions") == {}


def test_uploads_over_the_limit_are_400(tmp_path: Path) -> None:
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'small.db'}", max_upload_bytes=4096)
    try:
        auth = setup(h)
        batch = new_batch(h, auth)
        assert_failure(upload(h, auth, f"batchId={batch}", write_csv(tmp_path / "big.csv", txns(500))), 400)
    finally:
        h.stop()


def test_unexpected_errors_are_500_in_the_dialect_shape(embedded: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = setup(embedded)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.service.dataset_for", broken)
    assert "boom" not in assert_failure(embedded.client.post("/api/adm/import/batch", headers=auth, json={"Type": "Transactions"}), 500)


def test_openapi_lists_the_endpoints_and_their_parameters(embedded: Harness) -> None:
    paths = embedded.client.get("/schema/openapi.json").json()["paths"]

    def params(path: str, method: str) -> dict[tuple[str, str], bool]:
        return {(p["in"], p["name"]): p["required"] for p in paths[path][method]["parameters"]}

    auth = {("header", "Authorization"): True}
    doc_query = {("query", "Type"): False, ("query", "CompanyId"): False, ("query", "CompanyProjectId"): False}
    for prefix in ("/api/adm/import/file", "/api/admin/importBatches/file"):
        assert params(prefix, "post") == {**auth, ("query", "BatchId"): True, **doc_query}
    assert params("/api/adm/import/batch", "post") == {**auth, **doc_query}
    assert params("/api/adm/import/entries", "get") == {
        **auth, ("query", "BatchId"): True, ("query", "page"): False, ("query", "pageSize"): False,
    }
    assert params("/api/adm/import/result", "get") == {**auth, ("query", "BatchId"): True}


def test_same_records_as_the_native_api(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    native = harness.tenant("globex")["native"]["token"]
    harness.dataset("globex", "transactions", TRANSACTIONS)
    rows = txns(700)
    rows[10][1] = "x"  # one bad row in both
    path = write_csv(tmp_path / "t.csv", rows)
    batch = new_batch(harness, auth)
    assert_ok(upload(harness, auth, f"batchId={batch}", path))
    admin_view = batch_view(harness, "acme", batch)
    resp = harness.upload(native, path, dataset="transactions")
    assert resp.status_code == 202, resp.text
    native_view = harness.wait(resp.json()["id"])
    assert (admin_view.created, admin_view.failed) == (native_view.created, native_view.failed) == (699, 1)
    assert harness.records("acme", "transactions") == harness.records("globex", "transactions")
