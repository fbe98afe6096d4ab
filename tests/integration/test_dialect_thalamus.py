"""The Thalamus dialect driven as its docs show: POST /api/v4/import/file, GET /api/v4/import/status/{id}.

Over 400 lines on purpose: one module per vendor doc, so a reader finds every documented behaviour in one place.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.dialects.thalamus_bodies import render_import
from events import catalog
from events.catalog import TicketRow
from events.db import read_tx
from events.projections import ImportView, fold
from events.types import (
    AnyEvent,
    ChunkApplied,
    FileParsed,
    FileStored,
    ImportFailed,
    ImportRequested,
    ImportSpec,
    RolledBack,
    RowFailure,
    ThresholdExceeded,
)
from tests.support import Harness, contacts, write_csv, write_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
IMPORT_FILE_KEYS = [
    "id",
    "creationDate",
    "modificationDate",
    "creationOperator",
    "modificationOperator",
    "name",
    "fileName",
    "fileType",
    "owner",
    "relatedEntityType",
    "importDate",
    "userId",
    "partnerDatasourceId",
    "mediumContextData",
    "mediumContextDataJson",
    "rows",
    "rowsOk",
    "rowsWithErrors",
    "rowsSkipped",
    "rowsRollbacked",
    "rowsRollbackedWithErrors",
    "state",
    "percentageProcessed",
    "totalToProcess",
    "url",
    "fileImportType",
    "fileSize",
    "analysisResult",
    "analysisResultJson",
    "internationalizedState",
    "stateInternationalizableKey",
]
MEDIUM_KEYS = [
    "touchpointId",
    "touchpointCountryId",
    "communicationId",
    "activityId",
    "direction",
    "location",
    "asyncExcution",
    "tags",
    "source",
    "countriesIds",
    "mediumDate",
]
INT_KEYS = [
    "id",
    "creationDate",
    "modificationDate",
    "creationOperator",
    "modificationOperator",
    "importDate",
    "rows",
    "rowsOk",
    "rowsWithErrors",
    "rowsSkipped",
    "rowsRollbacked",
    "rowsRollbackedWithErrors",
    "percentageProcessed",
    "totalToProcess",
    "fileSize",
]
INTERNATIONAL = {
    "PROCESSING": ("Processing", "Processing"),
    "FINISHED": ("Finished", "Finished"),
    "FINISHED_WITH_ERRORS": ("Finished with errors", "FinishedWithErrors"),
    "ERROR": ("Error", "Error"),
    "CANCELED": ("Canceled", "Canceled"),
}
DUPLICATED = {
    "errors": {
        "ProcessorInfo": "DuplicatedName",
        "execution.ProcessorInfo": "execution.ProcessorInfo: DuplicatedName",
    }
}


def setup(
    h: Harness, name: str = "acme", datasets: tuple[str, ...] = ("partner_sales",)
) -> dict[str, str]:
    """A tenant with the datasets behind some import types; returns its touchpoint and token."""
    creds = h.tenant(name)
    for dataset in datasets:
        h.dataset(name, dataset)
    return {"touchpoint": creds["thalamus"]["touchpoint"], "token": creds["thalamus"]["token"]}


def as_headers(auth: dict[str, str]) -> dict[str, str]:
    return {"Thalamus-Touchpoint": auth["touchpoint"], "Thalamus-Token": auth["token"]}


def tenant_id(h: Harness, name: str = "acme") -> int:
    with read_tx(h.rt.engine) as conn:
        row = catalog.tenant_by_name(conn, name)
    assert row is not None
    return row.id


def upload(
    h: Harness,
    path: Path,
    query: dict[str, Any],
    headers: dict[str, str] | None = None,
    ctype: str = "text/csv",
    url: str = "/api/v4/import/file",
) -> Any:
    with path.open("rb") as fh:
        return h.client.post(
            url, params=query, headers=headers or {}, files={"file": (path.name, fh, ctype)}
        )


def assert_import_file(body: dict[str, Any]) -> None:
    """Every field of the ImportFile document, present and with the doc's JSON type."""
    assert list(body) == IMPORT_FILE_KEYS
    for key in INT_KEYS:
        assert type(body[key]) is int, key
    assert (
        body["fileType"] in ("EXCEL", "CSV")
        and isinstance(body["name"], str)
        and isinstance(body["fileName"], str)
    )
    assert list(body["owner"]) == ["id", "entityType"] and all(
        type(v) is int for v in body["owner"].values()
    )
    assert list(body["mediumContextData"]) == MEDIUM_KEYS
    medium = body["mediumContextData"]
    assert type(medium["touchpointId"]) is int and medium["asyncExcution"] is False
    assert all(medium[k] is None for k in MEDIUM_KEYS if k not in ("touchpointId", "asyncExcution"))
    assert body["mediumContextDataJson"] == (
        "<com.thalamus.aaa.MediumContextData>\n"
        f"  <touchpointId>{medium['touchpointId']}</touchpointId>\n"
        "  <asyncExcution>false</asyncExcution>\n"
        "</com.thalamus.aaa.MediumContextData>"
    )
    for key in ("relatedEntityType", "userId", "partnerDatasourceId", "url", "fileImportType"):
        assert body[key] is None, key
    assert (body["internationalizedState"], body["stateInternationalizableKey"]) == INTERNATIONAL[
        body["state"]
    ]
    assert 0 <= body["percentageProcessed"] <= 100
    assert body["creationDate"] <= body["importDate"] <= body["modificationDate"]
    if body["analysisResult"] is None:
        assert body["analysisResultJson"] is None
    else:
        assert isinstance(body["analysisResult"], str) and isinstance(
            json.loads(body["analysisResultJson"]), dict
        )


def status(h: Harness, ticket: int, auth: dict[str, str]) -> dict[str, Any]:
    resp = h.client.get(f"/api/v4/import/status/{ticket}", params=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert_import_file(body)
    return body


def assert_errors(
    resp: Any, status: int, errors: dict[str, str] | None = None, field: str | None = None
) -> dict[str, str]:
    """The dialect's error shape: {"errors": {"<field>": "<Code>", ...}}."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == ["errors"] and isinstance(body["errors"], dict) and body["errors"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["errors"].items())
    if errors is not None:
        assert body["errors"] == errors
    if field is not None:
        assert field in body["errors"]
        detail = body["errors"].get(f"execution.{field}")
        assert detail is None or detail.startswith(f"execution.{field}: ")
    return dict(body["errors"])


def test_xlsx_import_as_in_the_doc_then_status(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    path = write_xlsx(tmp_path / "PartnerSaleImporter.xlsx", contacts(576))
    harness.worker.worker.pause()
    try:
        # The doc's full URL: trailing slash, name, type, touchpoint and token in the query.
        resp = upload(
            harness,
            path,
            {"name": "importRest02", "type": 25011, **auth},
            ctype=XLSX,
            url="/api/v4/import/file/",
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert_import_file(body)
        assert body["state"] == "PROCESSING" and body["internationalizedState"] == "Processing"
        assert (
            body["name"] == "importRest02"
            and body["fileName"] == "PartnerSaleImporter.xlsx"
            and body["fileType"] == "EXCEL"
        )
        assert body["owner"] == {"id": tenant_id(harness), "entityType": 25011}
        assert body["fileSize"] == path.stat().st_size
        assert body["creationDate"] == body["modificationDate"] == body["importDate"]
        assert (body["rows"], body["rowsOk"], body["rowsWithErrors"], body["rowsSkipped"]) == (
            0,
            0,
            0,
            0,
        )
        assert (
            body["rowsRollbacked"],
            body["rowsRollbackedWithErrors"],
            body["percentageProcessed"],
            body["totalToProcess"],
        ) == (0, 0, 0, 0)
        assert body["analysisResult"] is None
    finally:
        harness.worker.worker.resume()
    view = harness.wait(body["id"])
    assert (
        view.state == "completed"
        and view.created == 576
        and view.file is not None
        and view.file.format == "xlsx"
    )
    done = status(harness, body["id"], auth)
    assert (
        done["id"] == body["id"]
        and done["state"] == "FINISHED"
        and done["internationalizedState"] == "Finished"
    )
    assert (
        done["rows"],
        done["rowsOk"],
        done["rowsWithErrors"],
        done["rowsSkipped"],
        done["rowsRollbacked"],
    ) == (576, 576, 0, 0, 0)
    assert (done["percentageProcessed"], done["totalToProcess"]) == (100, 0)
    assert (
        done["creationDate"] == body["creationDate"]
        and done["modificationDate"] >= body["modificationDate"]
    )
    assert view.finished_at is not None and done["modificationDate"] == int(
        view.finished_at.timestamp() * 1000
    )
    assert done["mediumContextData"] == body["mediumContextData"] and done["owner"] == body["owner"]
    assert len(harness.records("acme", "partner_sales")) == 576


def test_csv_with_headers_auth_and_rows_with_errors(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness, datasets=("physical_location",))
    rows = contacts(700)
    rows[3][2] = "old"  # line 4
    rows[650][2] = "x"  # line 651
    path = write_csv(tmp_path / "locations.csv", rows)
    resp = upload(harness, path, {"name": "locations", "type": "25006"}, headers=as_headers(auth))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_import_file(body)
    assert body["fileType"] == "CSV" and body["owner"]["entityType"] == 25006
    view = harness.wait(body["id"])
    done = status(harness, body["id"], auth)
    assert (
        done["state"] == "FINISHED_WITH_ERRORS"
        and done["internationalizedState"] == "Finished with errors"
    )
    assert (done["rows"], done["rowsOk"], done["rowsWithErrors"], done["rowsSkipped"]) == (
        700,
        698,
        2,
        0,
    )
    assert (done["rowsOk"], done["rowsWithErrors"]) == (view.completed, view.failed)
    analysis = json.loads(done["analysisResultJson"])
    assert done["analysisResult"] == "2 rows with errors"
    assert [e["row"] for e in analysis["errors"]] == [4, 651] and analysis["moreErrors"] == 0
    assert "age" in analysis["errors"][0]["message"]
    # the status also takes the header form of the credentials
    again = harness.client.get(f"/api/v4/import/status/{body['id']}", headers=as_headers(auth))
    assert again.status_code == 200 and again.json() == done
    assert len(harness.records("acme", "physical_location")) == 698


def test_a_name_used_twice_is_duplicated_name(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    other = setup(harness, "globex")
    path = write_csv(tmp_path / "s.csv", contacts(3))
    first = upload(harness, path, {"name": "vantasHoySep", "type": 25011, **auth})
    assert first.status_code == 200, first.text
    assert_errors(
        upload(harness, path, {"name": "vantasHoySep", "type": 25011, **auth}),
        400,
        DUPLICATED["errors"],
    )
    # another tenant may use the same name
    assert (
        upload(harness, path, {"name": "vantasHoySep", "type": 25011, **other}).status_code == 200
    )
    harness.wait(first.json()["id"])
    assert len(harness.records("acme", "partner_sales")) == 3


def test_touchpoint_and_token_are_checked(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    other = setup(embedded, "globex")
    path = write_csv(tmp_path / "s.csv", contacts(2))
    ticket = upload(embedded, path, {"name": "n1", "type": 25011, **auth}).json()["id"]
    cases: list[tuple[dict[str, str], int, dict[str, str]]] = [
        ({}, 400, {"partnerDataSource": "TouchpointCodeRequired"}),
        ({"token": auth["token"]}, 400, {"partnerDataSource": "TouchpointCodeRequired"}),
        (
            {"touchpoint": "test", "token": auth["token"]},
            400,
            {"partnerDataSource": "InvalidTouchpointCode"},
        ),
        ({"touchpoint": auth["touchpoint"]}, 401, {"token": "TokenRequired"}),
        ({"touchpoint": auth["touchpoint"], "token": "tht_wrong"}, 401, {"token": "InvalidToken"}),
        (
            {"touchpoint": auth["touchpoint"], "token": other["token"]},
            401,
            {"token": "InvalidToken"},
        ),
    ]
    for query, code, errors in cases:
        assert_errors(upload(embedded, path, {"name": "n2", "type": 25011, **query}), code, errors)
        assert_errors(
            embedded.client.get(f"/api/v4/import/status/{ticket}", params=query), code, errors
        )
        assert_errors(
            embedded.client.post(f"/api/v4/import/cancel/{ticket}", params=query), code, errors
        )
    headers = {"Thalamus-Touchpoint": "nope", "Thalamus-Token": auth["token"]}
    assert_errors(
        embedded.client.get(f"/api/v4/import/status/{ticket}", headers=headers),
        400,
        {"partnerDataSource": "InvalidTouchpointCode"},
    )


def test_name_type_and_file_are_checked(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    good = write_csv(tmp_path / "s.csv", contacts(2))
    assert (
        assert_errors(upload(embedded, good, {"type": 25011, **auth}), 400, field="name")["name"]
        == "NameRequired"
    )
    assert_errors(
        upload(embedded, good, {"name": "x" * 256, "type": 25011, **auth}), 400, field="name"
    )
    assert (
        assert_errors(upload(embedded, good, {"name": "a", **auth}), 400, field="type")["type"]
        == "ImportTypeRequired"
    )
    assert (
        assert_errors(
            upload(embedded, good, {"name": "a", "type": 99999, **auth}), 400, field="type"
        )["type"]
        == "InvalidImportType"
    )
    assert_errors(
        upload(embedded, good, {"name": "a", "type": "abc", **auth}),
        400,
        {"type": "InvalidImportType"},
    )
    # a known type whose dataset this account does not have
    assert (
        assert_errors(
            upload(embedded, good, {"name": "a", "type": 25004, **auth}), 400, field="type"
        )["type"]
        == "ImportTypeNotEnabled"
    )
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert (
        assert_errors(
            upload(embedded, png, {"name": "a", "type": 25011, **auth}, ctype="image/png"),
            400,
            field="file",
        )["file"]
        == "InvalidFileType"
    )
    pdf = tmp_path / "doc.xlsx"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\x01\x02")
    assert_errors(
        upload(embedded, pdf, {"name": "a", "type": 25011, **auth}, ctype=XLSX), 400, field="file"
    )
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert (
        assert_errors(
            upload(embedded, empty, {"name": "a", "type": 25011, **auth}), 400, field="file"
        )["file"]
        == "EmptyFile"
    )
    nofit = write_csv(tmp_path / "other.csv", [["sku", "qty"], ["x", "1"]])
    assert (
        assert_errors(
            upload(embedded, nofit, {"name": "a", "type": 25011, **auth}), 400, field="file"
        )["file"]
        == "InvalidColumns"
    )
    no_file = embedded.client.post(
        "/api/v4/import/file",
        params={"name": "a", "type": 25011, **auth},
        files={"note": (None, "no file here")},
    )
    assert assert_errors(no_file, 400, field="file")["file"] == "FileRequired"
    not_multipart = embedded.client.post(
        "/api/v4/import/file", params={"name": "a", "type": 25011, **auth}, json={"file": "x"}
    )
    assert assert_errors(not_multipart, 400, field="file")["file"] == "FileRequired"
    # none of the refusals took the name
    assert upload(embedded, good, {"name": "a", "type": 25011, **auth}).status_code == 200


def test_name_and_type_as_headers_or_form_fields(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    path = write_csv(tmp_path / "s.csv", contacts(2))
    by_header = upload(embedded, path, auth, headers={"name": "from-header", "type": "25011"})
    assert by_header.status_code == 200 and by_header.json()["name"] == "from-header"
    with path.open("rb") as fh:
        by_form = embedded.client.post(
            "/api/v4/import/file",
            params=auth,
            data={"name": "from-form", "type": "25011"},
            files={"file": (path.name, fh, "text/csv")},
        )
    assert by_form.status_code == 200 and by_form.json()["name"] == "from-form"


def test_status_takes_the_id_as_query_parameter_or_header_as_the_doc_lists(embedded: Harness, tmp_path: Path) -> None:
    auth = setup(embedded)
    ticket = upload(embedded, write_csv(tmp_path / "s.csv", contacts(3)), {"name": "mine", "type": 25011, **auth}).json()["id"]
    embedded.wait(ticket)
    by_path = status(embedded, ticket, auth)
    by_query = embedded.client.get("/api/v4/import/status", params={**auth, "id": str(ticket)})
    assert by_query.status_code == 200 and by_query.json() == by_path
    by_header = embedded.client.get("/api/v4/import/status", headers={**as_headers(auth), "id": str(ticket)})
    assert by_header.status_code == 200 and by_header.json() == by_path
    assert_errors(embedded.client.get("/api/v4/import/status", params={**auth, "id": "999999"}), 404, {"id": "ImportNotFound"})
    assert_errors(embedded.client.get("/api/v4/import/status", params=auth), 400, field="id")
    assert_errors(
        embedded.client.get("/api/v4/import/status", params={"id": str(ticket)}), 400, {"partnerDataSource": "TouchpointCodeRequired"}
    )


def test_every_error_under_the_prefix_has_the_thalamus_shape_unknown_routes_too(embedded: Harness) -> None:
    auth = setup(embedded)
    for path in ("/api/v4/import", "/api/v4/import/", "/api/v4/import/nope", "/api/v4/import/status/1/extra"):
        assert assert_errors(embedded.client.get(path, params=auth), 404, field="request")["request"] == "NotFound"
    wrong_method = embedded.client.delete("/api/v4/import/status/1", params=auth)
    assert assert_errors(wrong_method, 405, field="request")["request"] == "MethodNotAllowed"
    assert assert_errors(embedded.client.get("/api/v4/import/file", params=auth), 405)["request"] == "MethodNotAllowed"
    # outside the prefix the native shape stays
    assert list(embedded.client.get("/api/v4/importer").json()) == ["error"]
    assert list(embedded.client.get("/nowhere").json()) == ["error"]


def test_status_of_unknown_or_foreign_imports_is_404(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    theirs = setup(harness, "globex")
    ticket = upload(
        harness, write_csv(tmp_path / "s.csv", contacts(3)), {"name": "mine", "type": 25011, **auth}
    ).json()["id"]
    harness.wait(ticket)
    not_found = {"errors": {"id": "ImportNotFound"}}
    assert_errors(
        harness.client.get(f"/api/v4/import/status/{ticket}", params=theirs),
        404,
        not_found["errors"],
    )
    assert_errors(
        harness.client.post(f"/api/v4/import/cancel/{ticket}", params=theirs),
        404,
        not_found["errors"],
    )
    for missing in ("999999", "abc", "-1", "²"):
        assert_errors(
            harness.client.get(f"/api/v4/import/status/{missing}", params=auth),
            404,
            not_found["errors"],
        )
    assert status(harness, ticket, auth)["state"] == "FINISHED"
    assert harness.records("globex", "partner_sales") == {}


def test_tickets_of_other_front_doors_are_not_thalamus_imports(
    embedded: Harness, tmp_path: Path
) -> None:
    creds = embedded.tenant("acme")
    embedded.dataset("acme", "partner_sales")
    native = embedded.upload(
        creds["native"]["token"],
        write_csv(tmp_path / "c.csv", contacts(2)),
        dataset="partner_sales",
    )
    assert native.status_code == 202, native.text
    auth = {"touchpoint": creds["thalamus"]["touchpoint"], "token": creds["thalamus"]["token"]}
    assert_errors(
        embedded.client.get(f"/api/v4/import/status/{native.json()['id']}", params=auth),
        404,
        {"id": "ImportNotFound"},
    )


def test_cancel_then_status_is_canceled(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    harness.worker.worker.pause()
    try:
        ticket = upload(
            harness,
            write_csv(tmp_path / "s.csv", contacts(100)),
            {"name": "c", "type": 25011, **auth},
        ).json()["id"]
        resp = harness.client.post(f"/api/v4/import/cancel/{ticket}", params=auth)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert_import_file(body)
        assert (
            body["state"],
            body["internationalizedState"],
            body["stateInternationalizableKey"],
        ) == ("CANCELED", "Canceled", "Canceled")
    finally:
        harness.worker.worker.resume()
    harness.wait(ticket)
    done = status(harness, ticket, auth)
    assert done["state"] == "CANCELED" and (
        done["rowsOk"],
        done["totalToProcess"],
        done["percentageProcessed"],
    ) == (0, 0, 0)
    assert done["analysisResult"] == "canceled by the caller"
    assert_errors(
        harness.client.post(f"/api/v4/import/cancel/{ticket}", params=auth), 409, field="id"
    )
    assert harness.records("acme", "partner_sales") == {}


def test_same_records_as_the_native_api(harness: Harness, tmp_path: Path) -> None:
    auth = setup(harness)
    native = harness.tenant("globex")["native"]["token"]
    harness.dataset("globex", "partner_sales")
    rows = contacts(700)
    rows[10][2] = "x"
    path = write_csv(tmp_path / "same.csv", rows)
    ticket = upload(harness, path, {"name": "same", "type": 25011, **auth}).json()["id"]
    th = harness.wait(ticket)
    resp = harness.upload(native, path, dataset="partner_sales")
    assert resp.status_code == 202, resp.text
    nv = harness.wait(resp.json()["id"])
    assert (th.created, th.failed) == (nv.created, nv.failed) == (699, 1)
    body = status(harness, ticket, auth)
    assert (body["rowsOk"], body["rowsWithErrors"], body["rows"]) == (
        th.completed,
        th.failed,
        th.total_rows,
    )
    assert harness.records("acme", "partner_sales") == harness.records("globex", "partner_sales")


def _ticket_row(view: ImportView) -> TicketRow:
    return TicketRow(
        id=view.ticket,
        uuid=view.uuid,
        tenant_id=7,
        dataset_id=1,
        dialect="thalamus",
        dedup_key=None,
        has_callback=False,
        secret_uri=None,
        created_at=datetime(2025, 9, 10, tzinfo=UTC),
    )


def test_an_atomic_rollback_renders_error_and_rows_rollbacked() -> None:
    """Given a log whose import was rolled back, the document says ERROR and counts the undone rows."""
    t0 = datetime(2025, 9, 10, 12, 0, tzinfo=UTC)
    spec = ImportSpec(
        dataset="partner_stock",
        policy="atomic",
        threshold=1,
        dialect="thalamus",
        name="stock",
        filename="s.xlsx",
        extra={"type": "25012", "touchpointId": "3"},
    )
    events: list[AnyEvent] = [
        ImportRequested(at=t0, tenant="acme", spec=spec, uuid="u-1"),
        FileStored(at=t0, blob="b", size=82, sha256="x", format="xlsx", filename="s.xlsx"),
        FileParsed(at=t0 + timedelta(seconds=1), total_rows=10, chunks=2),
        ChunkApplied(
            at=t0 + timedelta(seconds=2),
            chunk=0,
            first=0,
            runs=(("c", 3), ("f", 2)),
            failures=(
                RowFailure(3, 5, "age: not an integer"),
                RowFailure(4, 6, "age: not an integer"),
            ),
        ),
        ThresholdExceeded(at=t0 + timedelta(seconds=2), failed=2, threshold="1"),
        RolledBack(at=t0 + timedelta(seconds=3), rows=3),
        ImportFailed(at=t0 + timedelta(seconds=3), reason="error threshold exceeded", skipped=5),
    ]
    view = fold(events, ImportView(ticket=274))
    body = json.loads(json.dumps(msgspec.to_builtins(render_import(view, _ticket_row(view)))))
    assert_import_file(body)
    assert body["state"] == "ERROR" and body["internationalizedState"] == "Error"
    assert (body["rows"], body["rowsOk"], body["rowsWithErrors"], body["rowsSkipped"]) == (
        10,
        0,
        2,
        5,
    )
    assert (body["rowsRollbacked"], body["rowsRollbackedWithErrors"]) == (3, 2)
    assert (
        body["owner"] == {"id": 7, "entityType": 25012}
        and body["mediumContextData"]["touchpointId"] == 3
    )
    assert (
        body["creationDate"] == int(t0.timestamp() * 1000)
        and body["importDate"] == body["creationDate"] + 1000
    )
    assert body["modificationDate"] == body["creationDate"] + 3000 and body["fileSize"] == 82
    assert body["analysisResult"] == "error threshold exceeded"
    assert [e["row"] for e in json.loads(body["analysisResultJson"])["errors"]] == [5, 6]


def test_unexpected_errors_are_500_in_the_dialect_shape(
    embedded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = setup(embedded)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.service.find_ticket", broken)
    assert_errors(
        embedded.client.get("/api/v4/import/status/1", params=auth),
        500,
        {"server": "InternalError"},
    )


def test_too_large_uploads_are_413(tmp_path: Path) -> None:
    h = Harness.start(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'small.db'}", max_upload_bytes=4096
    )
    try:
        auth = setup(h)
        resp = upload(
            h,
            write_csv(tmp_path / "big.csv", contacts(500)),
            {"name": "big", "type": 25011, **auth},
        )
        assert assert_errors(resp, 413, field="file")["file"] == "FileTooLarge"
    finally:
        h.stop()


def test_openapi_lists_the_endpoints_and_their_parameters(embedded: Harness) -> None:
    paths = embedded.client.get("/schema/openapi.json").json()["paths"]
    auth = {
        ("query", "touchpoint"): False,
        ("query", "token"): False,
        ("header", "Thalamus-Touchpoint"): False,
        ("header", "Thalamus-Token"): False,
    }
    expected = {
        ("/api/v4/import/file", "post"): {
            **auth,
            ("query", "name"): False,
            ("query", "type"): False,
        },
        ("/api/v4/import/status/{id}", "get"): {**auth, ("path", "id"): True},
        ("/api/v4/import/status", "get"): {**auth, ("query", "id"): False, ("header", "id"): False},
        ("/api/v4/import/cancel/{id}", "post"): {**auth, ("path", "id"): True},
    }
    for (path, method), params in expected.items():
        op = paths[path][method]
        assert {(p["in"], p["name"]): p["required"] for p in op["parameters"]} == params, path
        assert "400" in op["responses"]
