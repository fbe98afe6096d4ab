"""The Yesmail dialect driven as its doc shows: file-import from a URL, tickets, async results, schema.

Over 400 lines on purpose: one module per vendor doc, so a reader finds every documented behaviour in one place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.support import Harness, Site, contacts, write_csv

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BASE = "http://testserver.local"
CART = {
    "fields": [
        {"name": "payloadid", "type": "integer", "required": True},
        {"name": "carproductname", "type": "string"},
        {"name": "cartproductimage", "type": "string"},
    ],
    "key": ["payloadid"],
}
TICKET_KEYS = ["id", "state", "message", "lastUpdate", "events", "request", "response"]
RESULT_KEYS = ["id", "lastUpdate", "counts", "completed", "failed", "ignored"]


def setup(
    h: Harness, name: str = "acme", dataset: str = "contacts", schema: dict[str, Any] | None = None
) -> dict[str, str]:
    """A tenant with a dataset; returns the doc's two auth headers."""
    creds = h.tenant(name)
    h.dataset(name, dataset, schema)
    return {"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]}


def serve_csv(site: Site, name: str, rows: list[list[Any]], tmp: Path, sep: str = ",") -> str:
    site.files[name] = write_csv(tmp / name, rows, sep=sep).read_bytes()
    return site.url(f"/files/{name}")


def file_import(
    h: Harness, headers: dict[str, str], payload: Any, dataset: str = "contacts", query: str = ""
) -> Any:
    return h.client.post(
        f"/v2/reference-data/{dataset}/records/file-import{query}", json=payload, headers=headers
    )


def accepted(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    assert resp.headers["content-location"] == f"{BASE}/v2/tickets/{body['id']}"
    assert_ticket_shape(body)
    return body


def assert_ticket_shape(body: dict[str, Any]) -> None:
    """Every documented field of a ticket, with its JSON type."""
    assert list(body) == TICKET_KEYS
    assert isinstance(body["id"], str) and body["id"].isdigit()
    assert body["state"] in ("accepted", "processing", "completed", "failed")
    assert isinstance(body["message"], str) and body["message"] == body["events"][-1]["message"]
    assert ISO.match(body["lastUpdate"])
    for event in body["events"]:
        assert list(event) == ["state", "message", "time"] and ISO.match(event["time"])
        assert event["state"] in ("accepted", "processing", "completed", "failed") and isinstance(
            event["message"], str
        )
    assert (
        body["events"][0]["state"] == "accepted"
        and body["events"][0]["message"] == "File import to target list accepted."
    )
    assert body["state"] == body["events"][-1]["state"]
    assert list(body["request"]) == ["id", "user", "time", "uri"] and ISO.match(
        body["request"]["time"]
    )
    assert list(body["response"]) == ["uri", "ref", "location"]
    assert body["response"]["location"] == f"{BASE}/v2/async-results/{body['id']}"


def assert_results_shape(body: dict[str, Any]) -> None:
    """Every documented field of the async results, with its JSON type."""
    assert list(body) == RESULT_KEYS
    assert isinstance(body["id"], str) and body["id"].isdigit() and ISO.match(body["lastUpdate"])
    assert list(body["counts"]) == ["completed", "failed", "ignored", "total", "requested"]
    assert all(type(v) is int for v in body["counts"].values())
    c = body["counts"]
    assert c["total"] == c["completed"] + c["failed"] + c["ignored"] <= c["requested"]
    assert (len(body["completed"]), len(body["failed"]), len(body["ignored"])) == (
        c["completed"],
        c["failed"],
        c["ignored"],
    )
    for e in body["completed"]:
        assert list(e) == ["index", "time"] and type(e["index"]) is int and ISO.match(e["time"])
    for e in body["failed"]:
        assert (
            list(e) == ["index", "time", "error"]
            and type(e["index"]) is int
            and ISO.match(e["time"])
        )
        assert (
            list(e["error"]) == ["status", "message"]
            and e["error"]["status"] == 400
            and e["error"]["message"]
        )
    for e in body["ignored"]:
        assert list(e) == ["index"] and type(e["index"]) is int


def get_ticket(h: Harness, headers: dict[str, str], ticket: str) -> dict[str, Any]:
    resp = h.client.get(f"/v2/tickets/{ticket}", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert_ticket_shape(body)
    return body


def get_results(h: Harness, headers: dict[str, str], ticket: str) -> dict[str, Any]:
    resp = h.client.get(f"/v2/async-results/{ticket}", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = resp.json()
    assert_results_shape(body)
    return body


def assert_error(resp: Any, status: int) -> str:
    """The dialect's error shape: {"error": {"status", "message"}} with the same HTTP status."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == ["error"] and list(body["error"]) == ["status", "message"]
    assert (
        body["error"]["status"] == status
        and isinstance(body["error"]["message"], str)
        and body["error"]["message"]
    )
    return str(body["error"]["message"])


def test_the_doc_payload_end_to_end_with_callback(
    harness: Harness, tmp_path: Path, site: Site
) -> None:
    headers = setup(harness, dataset="cart", schema=CART)
    rows: list[list[Any]] = [[i, f"Product {i}", f"img{i}.png"] for i in range(1240)]
    rows[1][0] = "one"  # index 1 fails: not an integer
    uri = serve_csv(site, "file.txt", rows, tmp_path)
    payload = {
        "errorThreshold": 100,
        "importType": "replace",
        "source": {
            "headers": False,
            "mappings": [{"payloadid": 0}, {"carproductname": 1}, {"cartproductimage": 2}],
            "separator": ",",
            "uri": uri,
        },
    }
    hook = site.url("/hook")
    body = accepted(
        file_import(
            harness, headers, payload, "cart", f"?responseUri={hook}&responseRef=callers-ref-value"
        )
    )
    assert body["state"] in ("accepted", "processing")
    ticket = body["id"]
    view = harness.wait(int(ticket), until="settled")
    assert view.state == "completed" and (view.created, view.failed) == (1239, 1)
    assert view.spec is not None and view.spec.policy == "atomic" and view.spec.mode == "replace"

    final = get_ticket(harness, headers, ticket)
    assert final["id"] == ticket and final["state"] == "completed"
    assert final["message"] == "File imported successfully."
    assert [(e["state"], e["message"]) for e in final["events"]] == [
        ("accepted", "File import to target list accepted."),
        ("processing", "File downloaded."),
        ("processing", "File pre-parsed, importing 1240 records."),
        ("completed", "File imported successfully."),
    ]
    assert final["lastUpdate"] == final["events"][-1]["time"]
    assert final["request"] == {
        "id": view.uuid,
        "user": headers["Api-User"],
        "time": final["events"][0]["time"],
        "uri": f"{BASE}/v2/reference-data/cart/records/file-import",
    }
    assert final["response"] == {
        "uri": hook,
        "ref": "callers-ref-value",
        "location": f"{BASE}/v2/async-results/{ticket}",
    }

    results = get_results(harness, headers, ticket)
    assert results["id"] == ticket and results["lastUpdate"] == final["lastUpdate"]
    assert results["counts"] == {
        "completed": 1239,
        "failed": 1,
        "ignored": 0,
        "total": 1240,
        "requested": 1240,
    }
    assert [e["index"] for e in results["completed"]] == [0, *range(2, 1240)]
    assert (
        results["failed"][0]["index"] == 1
        and "payloadid" in results["failed"][0]["error"]["message"]
    )
    assert results["ignored"] == []

    records = harness.records("acme", "cart")
    assert len(records) == 1239 and records["[7]"] == {
        "payloadid": 7,
        "carproductname": "Product 7",
        "cartproductimage": "img7.png",
    }
    # The callback: the final ticket, signed, posted to responseUri once.
    assert len(site.hooks) == 1
    path, hook_headers, hook_body = site.hooks[0]
    assert path == "/hook" and "webhook-signature" in {k.lower() for k in hook_headers}
    assert json.loads(hook_body) == {
        **final,
        "response": {**final["response"], "location": f"{BASE}/v2/async-results/{ticket}"},
    }


def _bad_every(n: int, every: int) -> list[list[Any]]:
    rows = contacts(n)
    for i in range(every, n + 1, every):
        rows[i][2] = "not-a-number"
    return rows


def test_past_the_threshold_nothing_is_written_and_no_record_claims_completion(
    harness: Harness, tmp_path: Path, site: Site
) -> None:
    headers = setup(harness)
    rows = _bad_every(800, 100)  # 8 bad rows over two chunks
    uri = serve_csv(site, "c.csv", rows, tmp_path)
    ticket = accepted(
        file_import(
            harness, headers, {"errorThreshold": 5, "source": {"headers": True, "uri": uri}}
        )
    )["id"]
    view = harness.wait(int(ticket))
    assert view.state == "failed" and view.threshold_exceeded and view.rolled_back > 0
    body = get_ticket(harness, headers, ticket)
    assert body["state"] == "failed"
    states = [(e["state"], e["message"]) for e in body["events"]]
    assert states[:3] == [
        ("accepted", "File import to target list accepted."),
        ("processing", "File downloaded."),
        ("processing", "File pre-parsed, importing 800 records."),
    ]
    assert states[3] == ("processing", "Error threshold exceeded: 6 records failed, threshold 5.")
    assert states[4][0] == "failed" and len(states) == 5
    assert "threshold" in body["message"] and "no records were added or updated" in body["message"]
    results = get_results(harness, headers, ticket)
    assert results["counts"] == {
        "completed": 0,
        "failed": 6,
        "ignored": 0,
        "total": 6,
        "requested": 800,
    }
    assert results["completed"] == [] and [e["index"] for e in results["failed"]] == [
        99,
        199,
        299,
        399,
        499,
        599,
    ]
    assert harness.records("acme") == {}


def test_percent_threshold_within_limit_commits_and_zero_means_no_check(
    embedded: Harness, tmp_path: Path, site: Site
) -> None:
    headers = setup(embedded)
    uri = serve_csv(site, "p.csv", _bad_every(200, 50), tmp_path)
    ticket = accepted(
        file_import(
            embedded, headers, {"errorThreshold": "2%", "source": {"headers": True, "uri": uri}}
        )
    )["id"]
    assert embedded.wait(int(ticket)).state == "completed"
    assert get_results(embedded, headers, ticket)["counts"] == {
        "completed": 196,
        "failed": 4,
        "ignored": 0,
        "total": 200,
        "requested": 200,
    }
    uri = serve_csv(site, "z.csv", _bad_every(100, 2), tmp_path)
    ticket = accepted(
        file_import(
            embedded, headers, {"errorThreshold": 0, "source": {"headers": True, "uri": uri}}
        )
    )["id"]
    view = embedded.wait(int(ticket))
    assert (
        view.state == "completed"
        and view.failed == 50
        and view.spec is not None
        and view.spec.threshold is None
    )


def test_import_types_ignore_update_replace(embedded: Harness, tmp_path: Path, site: Site) -> None:
    headers = setup(embedded)
    first = serve_csv(
        site,
        "1.csv",
        [["email", "name", "age"], ["a@x.io", "A", "1"], ["b@x.io", "B", "2"]],
        tmp_path,
    )
    embedded.wait(
        int(
            accepted(file_import(embedded, headers, {"source": {"headers": True, "uri": first}}))[
                "id"
            ]
        )
    )
    # ignore: existing records are skipped (listed as ignored), new ones inserted
    second = serve_csv(
        site,
        "2.csv",
        [["email", "name", "age"], ["a@x.io", "Z", "9"], ["c@x.io", "C", "3"]],
        tmp_path,
    )
    ticket = accepted(
        file_import(
            embedded, headers, {"importType": "ignore", "source": {"headers": True, "uri": second}}
        )
    )["id"]
    embedded.wait(int(ticket))
    results = get_results(embedded, headers, ticket)
    assert results["counts"] == {
        "completed": 1,
        "failed": 0,
        "ignored": 1,
        "total": 2,
        "requested": 2,
    }
    assert results["ignored"] == [{"index": 0}] and [e["index"] for e in results["completed"]] == [
        1
    ]
    assert embedded.records("acme")['["a@x.io"]']["age"] == 1
    # update (the default): a partial record keeps its other fields
    third = serve_csv(site, "3.csv", [["email", "age"], ["a@x.io", "5"]], tmp_path)
    embedded.wait(
        int(
            accepted(file_import(embedded, headers, {"source": {"headers": True, "uri": third}}))[
                "id"
            ]
        )
    )
    assert embedded.records("acme")['["a@x.io"]'] == {"email": "a@x.io", "name": "A", "age": 5}
    # replace: the whole record
    embedded.wait(
        int(
            accepted(
                file_import(
                    embedded,
                    headers,
                    {"importType": "replace", "source": {"headers": True, "uri": third}},
                )
            )["id"]
        )
    )
    assert embedded.records("acme")['["a@x.io"]'] == {"email": "a@x.io", "age": 5}


@pytest.mark.parametrize("separator", ["\t", "|", ";"])
def test_separators_and_headerless_positional_columns(
    embedded: Harness, tmp_path: Path, site: Site, separator: str
) -> None:
    headers = setup(embedded)
    uri = serve_csv(
        site, "s.txt", [["a@x.io", "A", "1"], ["b@x.io", "B", "2"]], tmp_path, sep=separator
    )
    ticket = accepted(
        file_import(embedded, headers, {"source": {"separator": separator, "uri": uri}})
    )["id"]
    assert embedded.wait(int(ticket)).created == 2  # headers default false: both lines are records
    assert embedded.records("acme")['["b@x.io"]'] == {"email": "b@x.io", "name": "B", "age": 2}


def test_xlsx_source_behind_basic_auth_never_logs_the_password(
    embedded: Harness, tmp_path: Path, site: Site
) -> None:
    headers = setup(embedded)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in contacts(3):
        ws.append(row)
    wb.save(tmp_path / "c.xlsx")
    site.files["c.xlsx"] = (tmp_path / "c.xlsx").read_bytes()
    uri = site.url("/secure/c.xlsx", auth=True)
    payload = {"source": {"headers": True, "mappings": [{"email": 0}, {"age": 2}], "uri": uri}}
    ticket = accepted(file_import(embedded, headers, payload))["id"]
    view = embedded.wait(int(ticket))
    assert (
        view.state == "completed"
        and view.created == 3
        and view.file is not None
        and view.file.format == "xlsx"
    )
    assert (
        view.spec is not None
        and view.spec.source_uri is not None
        and "s3cr" not in view.spec.source_uri
    )
    assert "s3cr" not in json.dumps(get_ticket(embedded, headers, ticket))
    assert embedded.records("acme")['["user1@example.com"]'] == {
        "email": "user1@example.com",
        "age": 21,
    }


def test_a_source_that_is_not_a_spreadsheet_fails_the_ticket(embedded: Harness, site: Site) -> None:
    headers = setup(embedded)
    site.files["image.png"] = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    ticket = accepted(
        file_import(embedded, headers, {"source": {"uri": site.url("/files/image.png")}})
    )["id"]
    assert embedded.wait(int(ticket)).state == "failed"
    body = get_ticket(embedded, headers, ticket)
    assert body["state"] == "failed" and "cannot be imported" in body["message"]
    missing = accepted(
        file_import(embedded, headers, {"source": {"uri": site.url("/files/nothing.csv")}})
    )["id"]
    assert embedded.wait(int(missing)).state == "failed"
    assert get_ticket(embedded, headers, missing)["message"].startswith("Download failed")


def test_ticket_while_accepted(embedded: Harness, site: Site, tmp_path: Path) -> None:
    headers = setup(embedded)
    uri = serve_csv(site, "c.csv", contacts(5), tmp_path)
    embedded.worker.worker.pause()
    try:
        body = accepted(file_import(embedded, headers, {"source": {"headers": True, "uri": uri}}))
        assert (
            body["state"] == "accepted"
            and body["message"] == "File import to target list accepted."
        )
        assert (
            len(body["events"]) == 1
            and body["response"]["uri"] is None
            and body["response"]["ref"] is None
        )
        assert get_results(embedded, headers, body["id"])["counts"] == {
            "completed": 0,
            "failed": 0,
            "ignored": 0,
            "total": 0,
            "requested": 0,
        }
    finally:
        embedded.worker.worker.resume()
    assert embedded.wait(int(body["id"])).created == 5


def test_malformed_payloads_are_400(embedded: Harness, site: Site) -> None:
    headers = setup(embedded)
    uri = site.url("/files/c.csv")
    bad: list[Any] = [
        {},
        {"source": {}},
        {"source": {"uri": uri, "colour": "red"}},
        {"source": {"uri": uri}, "extra": 1},
        {"errorThreshold": "150%", "source": {"uri": uri}},
        {"errorThreshold": 1.5, "source": {"uri": uri}},
        {"errorThreshold": True, "source": {"uri": uri}},
        {"errorThreshold": -1, "source": {"uri": uri}},
        {"importType": "insert", "source": {"uri": uri}},
        {"source": {"uri": uri, "separator": "x"}},
        {"source": {"uri": uri, "headers": "yes"}},
        {"source": {"uri": uri, "mappings": [{"email": 0, "age": 1}]}},
        {"source": {"uri": uri, "mappings": [{"colour": 0}]}},  # not a field of the dataset
        {"source": {"uri": "file:///etc/passwd"}},
        {"source": {"uri": "gopher://127.0.0.1/x"}},
    ]
    for payload in bad:
        assert_error(file_import(embedded, headers, payload), 400)
    raw = embedded.client.post(
        "/v2/reference-data/contacts/records/file-import", content=b"{not json", headers=headers
    )
    assert_error(raw, 400)
    assert_error(
        file_import(embedded, headers, {"source": {"uri": uri}}, query="?responseUri=ftp://x/y"),
        400,
    )
    assert "colour" in assert_error(
        file_import(embedded, headers, {"source": {"uri": uri, "mappings": [{"colour": 0}]}}), 400
    )


def test_unknown_dataset_is_404_and_schema_view(embedded: Harness, site: Site) -> None:
    headers = setup(embedded)
    message = assert_error(
        file_import(
            embedded, headers, {"source": {"uri": site.url("/files/x.csv")}}, dataset="nope"
        ),
        404,
    )
    assert "nope" in message
    resp = embedded.client.get("/v2/reference-data/contacts?view=schema", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "name": "contacts",
        "view": "schema",
        "fields": [
            {"name": "email", "type": "email", "required": True, "key": True},
            {"name": "name", "type": "string", "required": False, "key": False},
            {"name": "age", "type": "integer", "required": False, "key": False},
            {"name": "balance", "type": "decimal", "required": False, "key": False},
            {"name": "active", "type": "boolean", "required": False, "key": False},
            {"name": "joined", "type": "date", "required": False, "key": False},
        ],
        "key": ["email"],
    }
    assert (
        embedded.client.get("/v2/reference-data/contacts", headers=headers).json()["view"]
        == "schema"
    )
    assert_error(
        embedded.client.get("/v2/reference-data/contacts?view=records", headers=headers), 400
    )
    assert_error(embedded.client.get("/v2/reference-data/nope?view=schema", headers=headers), 404)


def test_credentials_are_checked_on_every_endpoint(
    embedded: Harness, site: Site, tmp_path: Path
) -> None:
    good = setup(embedded)
    other = embedded.tenant("globex")["yesmail"]
    ticket = accepted(
        file_import(
            embedded, good, {"source": {"uri": serve_csv(site, "c.csv", contacts(2), tmp_path)}}
        )
    )["id"]
    variants = [
        {},
        {"Api-User": good["Api-User"]},
        {"Api-Key": good["Api-Key"]},
        {**good, "Api-Key": "ymk_wrong"},
        {"Api-User": good["Api-User"], "Api-Key": other["api_key"]},  # another tenant's key
    ]
    for headers in variants:
        assert "Api-User" in assert_error(
            file_import(embedded, headers, {"source": {"uri": site.url("/files/c.csv")}}), 401
        )
        assert_error(embedded.client.get(f"/v2/tickets/{ticket}", headers=headers), 401)
        assert_error(embedded.client.get(f"/v2/async-results/{ticket}", headers=headers), 401)
        assert_error(
            embedded.client.get("/v2/reference-data/contacts?view=schema", headers=headers), 401
        )
    # auth is checked before the payload is read
    assert_error(
        embedded.client.post("/v2/reference-data/contacts/records/file-import", content=b"{"), 401
    )


def test_another_tenants_tickets_and_datasets_are_404(
    harness: Harness, tmp_path: Path, site: Site
) -> None:
    mine = setup(harness)
    theirs = setup(harness, "globex", dataset="other")
    ticket = accepted(
        file_import(
            harness,
            mine,
            {"source": {"headers": True, "uri": serve_csv(site, "c.csv", contacts(3), tmp_path)}},
        )
    )["id"]
    harness.wait(int(ticket))
    assert_error(harness.client.get(f"/v2/tickets/{ticket}", headers=theirs), 404)
    assert_error(harness.client.get(f"/v2/async-results/{ticket}", headers=theirs), 404)
    assert_error(harness.client.get("/v2/reference-data/contacts?view=schema", headers=theirs), 404)
    assert_error(file_import(harness, theirs, {"source": {"uri": site.url("/files/c.csv")}}), 404)
    assert get_ticket(harness, mine, ticket)["state"] == "completed"
    for missing in ("999999", "abc", "12ab", "-1", "²"):
        assert_error(harness.client.get(f"/v2/tickets/{missing}", headers=mine), 404)
        assert_error(harness.client.get(f"/v2/async-results/{missing}", headers=mine), 404)


def test_tickets_of_other_front_doors_are_not_yesmail_tickets(
    embedded: Harness, tmp_path: Path
) -> None:
    creds = embedded.tenant("acme")
    embedded.dataset("acme")
    headers = {"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]}
    native = embedded.upload(
        creds["native"]["token"], write_csv(tmp_path / "c.csv", contacts(2)), dataset="contacts"
    )
    assert native.status_code == 202, native.text
    assert_error(embedded.client.get(f"/v2/tickets/{native.json()['id']}", headers=headers), 404)
    assert_error(
        embedded.client.get(f"/v2/async-results/{native.json()['id']}", headers=headers), 404
    )


def test_same_records_as_the_native_api(harness: Harness, tmp_path: Path, site: Site) -> None:
    headers = setup(harness)
    native = harness.tenant("globex")["native"]["token"]
    harness.dataset("globex")
    rows = contacts(700)
    rows[10][2] = "x"
    path = write_csv(tmp_path / "same.csv", rows)
    site.files["same.csv"] = path.read_bytes()
    ticket = accepted(
        file_import(
            harness, headers, {"source": {"headers": True, "uri": site.url("/files/same.csv")}}
        )
    )["id"]
    ym = harness.wait(int(ticket))
    resp = harness.upload(native, path, dataset="contacts")
    assert resp.status_code == 202, resp.text
    nv = harness.wait(resp.json()["id"])
    assert (ym.created, ym.failed) == (nv.created, nv.failed) == (699, 1)
    counts = get_results(harness, headers, ticket)["counts"]
    assert (counts["completed"], counts["failed"], counts["requested"]) == (
        ym.completed,
        ym.failed,
        ym.total_rows,
    )
    assert harness.records("acme") == harness.records("globex")


def test_too_large_payload_is_413(tmp_path: Path) -> None:
    h = Harness.start(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'small.db'}", max_upload_bytes=4096
    )
    try:
        headers = setup(h)
        payload = {
            "source": {"uri": "http://127.0.0.1/x.csv", "separator": "," * (3 * 1024 * 1024)}
        }
        assert_error(file_import(h, headers, payload), 413)
    finally:
        h.stop()


def test_unexpected_errors_are_500_in_the_dialect_shape(
    embedded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = setup(embedded)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.service.find_ticket", broken)
    assert "boom" not in assert_error(embedded.client.get("/v2/tickets/1", headers=headers), 500)


def test_openapi_lists_the_endpoints_and_their_parameters(embedded: Harness) -> None:
    paths = embedded.client.get("/schema/openapi.json").json()["paths"]
    auth = {("header", "Api-User"): True, ("header", "Api-Key"): True}
    expected = {
        ("/v2/reference-data/{dataset}/records/file-import", "post"): {
            **auth,
            ("path", "dataset"): True,
            ("query", "responseUri"): False,
            ("query", "responseRef"): False,
        },
        ("/v2/tickets/{id}", "get"): {**auth, ("path", "id"): True},
        ("/v2/async-results/{id}", "get"): {**auth, ("path", "id"): True},
        ("/v2/reference-data/{dataset}", "get"): {
            **auth,
            ("path", "dataset"): True,
            ("query", "view"): False,
        },
    }
    for (path, method), params in expected.items():
        op = paths[path][method]
        assert {(p["in"], p["name"]): p["required"] for p in op["parameters"]} == params, path
        assert "401" in op["responses"]
    assert "requestBody" in paths["/v2/reference-data/{dataset}/records/file-import"]["post"]


@pytest.mark.parametrize(
    "source",
    [
        {"headers": False},  # positional columns; the second row is short
        {"headers": False, "mappings": [{"email": 0}, {"name": 1}, {"age": 2}]},
        {"headers": True, "mappings": [{"email": 0}, {"name": 1}, {"age": 2}]},
    ],
)
def test_update_never_blanks_a_field_the_row_lacks(
    embedded: Harness, tmp_path: Path, site: Site, source: dict[str, Any]
) -> None:
    headers = setup(embedded)
    first = serve_csv(site, "1.csv", [["email", "name", "age"], ["a@x.io", "A", "1"], ["b@x.io", "B", "2"]], tmp_path)
    embedded.wait(int(accepted(file_import(embedded, headers, {"source": {"headers": True, "uri": first}}))["id"]))
    rows: list[list[Any]] = [["a@x.io", "Z", "9"], ["b@x.io", "Y"]]
    if source["headers"]:
        rows = [["email", "name"], ["a@x.io", "Z"], ["b@x.io", "Y"]]  # a mapping past the header
    uri = serve_csv(site, "2.csv", rows, tmp_path)
    payload = {"importType": "update", "errorThreshold": 0, "source": {**source, "uri": uri}}
    ticket = accepted(file_import(embedded, headers, payload))["id"]
    view = embedded.wait(int(ticket))
    assert view.state == "completed"
    results = get_results(embedded, headers, ticket)
    failed = results["failed"]
    assert failed and all("no column 3 (field 'age')" in f["error"]["message"] for f in failed), failed
    assert embedded.records("acme")['["b@x.io"]'] == {"email": "b@x.io", "name": "B", "age": 2}
    assert results["counts"]["completed"] + len(failed) == results["counts"]["total"]
