"""String fields keep their text exactly, through HTTP: leading zeros in CSV, XLSX and XLS text cells;
number cells in a string field without '.0' or an exponent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from tests.support import Harness, native_auth, submit, write_csv
from tests.support.files import write_xls

HEADER = ["email", "name", "age"]


def _names(h: Harness, auth: dict[str, str]) -> dict[str, Any]:
    resp = h.client.get("/datasets/contacts/records?limit=100", headers=auth)
    assert resp.status_code == 200, resp.text
    return {r["key"]["email"]: r["values"]["name"] for r in resp.json()["items"]}


def test_csv_text_keeps_leading_zeros_and_number_like_text(harness: Harness, tmp_path: Path) -> None:
    auth = native_auth(harness)
    rows = [HEADER, ["a@example.com", "00123", 1], ["b@example.com", "0042.50", 2], ["c@example.com", "1e5", 3]]
    view = harness.wait(submit(harness, auth, write_csv(tmp_path / "z.csv", rows)))
    assert view.state == "completed" and view.created == 3
    assert _names(harness, auth) == {"a@example.com": "00123", "b@example.com": "0042.50", "c@example.com": "1e5"}


def test_xlsx_text_cells_keep_their_text_and_number_cells_read_as_written(harness: Harness, tmp_path: Path) -> None:
    auth = native_auth(harness)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in [
        ["a@example.com", "00123", 1],  # a text cell
        ["b@example.com", 1234567890123, 2],  # a number cell in a string field
        ["c@example.com", 1e20, 3],
        ["d@example.com", 2.5e-7, 4],
        ["e@example.com", 12.0, 5],
    ]:
        ws.append(row)
    path = tmp_path / "z.xlsx"
    wb.save(path)
    view = harness.wait(submit(harness, auth, path))
    assert view.state == "completed" and view.created == 5
    assert _names(harness, auth) == {
        "a@example.com": "00123", "b@example.com": "1234567890123", "c@example.com": "100000000000000000000",
        "d@example.com": "0.00000025", "e@example.com": "12",
    }


def test_xls_text_cells_keep_their_text_and_number_cells_read_as_written(embedded: Harness, tmp_path: Path) -> None:
    auth = native_auth(embedded)
    rows: list[list[Any]] = [
        HEADER,
        ["a@example.com", "00123", 1],
        ["b@example.com", 1234567890123.0, 2],
        ["c@example.com", 1e20, 3],
        ["d@example.com", 12.0, 4],
    ]
    view = embedded.wait(submit(embedded, auth, write_xls(tmp_path / "z.xls", rows)))
    assert view.state == "completed" and view.created == 4
    assert _names(embedded, auth) == {
        "a@example.com": "00123", "b@example.com": "1234567890123", "c@example.com": "100000000000000000000",
        "d@example.com": "12",
    }


def test_keys_and_values_with_backslashes_tabs_newlines_and_quotes_are_stored_exactly(harness: Harness, tmp_path: Path) -> None:
    """PostgreSQL writes new records by COPY's text format, whose escape character is the backslash."""
    creds = harness.tenant("acme")
    schema = {"fields": [{"name": "code", "type": "string", "required": True}, {"name": "note", "type": "string"}],
              "key": ["code"]}
    harness.dataset("acme", "codes", schema=schema)
    odd = ["a\\b", "tab\there", "new\nline", "cr\rhere", 'quote"d', "back\\\\slash\\n", "ünï\u2028cødé", "\\.", "x\\"]
    rows = [["code", "note"]] + [[f"k{i}{text}", f"{text}|{text}"] for i, text in enumerate(odd)]
    resp = harness.upload(str(creds["native"]["token"]), write_csv(tmp_path / "odd.csv", rows), dataset="codes")
    assert resp.status_code == 202, resp.text
    view = harness.wait(int(resp.json()["id"]))
    assert (view.state, view.created) == ("completed", len(odd)), view.reason
    stored = {values["code"]: values["note"] for values in harness.records("acme", "codes").values()}
    assert stored == {f"k{i}{text}": f"{text}|{text}" for i, text in enumerate(odd)}
