"""Each format end to end: header-less CSV with mappings, TSV, semicolons, BOM, XLSX, XLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from events.projections import iter_results
from tests.support import Harness, write_csv

ROWS = [["ann@example.com", "Ann", 34], ["bob@example.com", "Bob", 41], ["cy@example.com", "Cy", 29]]


def _setup(h: Harness) -> str:
    creds = h.tenant("acme")
    h.dataset("acme")
    return str(creds["native"]["token"])


def _run(h: Harness, token: str, path: Path, **fields: Any) -> Any:
    resp = h.upload(token, path, dataset="contacts", **fields)
    assert resp.status_code == 202, resp.text
    return h.wait(resp.json()["id"])


def _check(h: Harness) -> None:
    recs = h.records("acme")
    assert {k: (v["name"], v["age"]) for k, v in recs.items()} == {
        '["ann@example.com"]': ("Ann", 34), '["bob@example.com"]': ("Bob", 41), '["cy@example.com"]': ("Cy", 29),
    }


def test_headerless_csv_with_explicit_mappings(harness: Harness, tmp_path: Path) -> None:
    token = _setup(harness)
    path = write_csv(tmp_path / "m.csv", [[r[2], r[0], r[1]] for r in ROWS])
    v = _run(harness, token, path, headers="false", mappings={"age": 0, "email": 1, "name": 2})
    assert v.state == "completed" and v.created == 3 and v.total_rows == 3
    _check(harness)


def test_tsv_is_sniffed(harness: Harness, tmp_path: Path) -> None:
    token = _setup(harness)
    path = write_csv(tmp_path / "t.tsv", [["email", "name", "age"], *ROWS], sep="\t", newline="\n")
    v = _run(harness, token, path)
    assert v.state == "completed" and v.created == 3 and v.parsed is not None and v.parsed.separator == "\t"
    _check(harness)


@pytest.mark.parametrize("sep", [";", "|"])
def test_other_separators_given_explicitly(embedded: Harness, tmp_path: Path, sep: str) -> None:
    token = _setup(embedded)
    path = write_csv(tmp_path / "s.csv", [["email", "name", "age"], *ROWS], sep=sep)
    v = _run(embedded, token, path, separator=sep)
    assert v.state == "completed" and v.created == 3
    _check(embedded)


def test_bom_quoted_fields_and_embedded_newlines(embedded: Harness, tmp_path: Path) -> None:
    token = _setup(embedded)
    path = write_csv(tmp_path / "b.csv", [["email", "name", "age"], ["ann@example.com", 'Ann "A", line1\nline2', 34]], bom=True)
    v = _run(embedded, token, path)
    assert v.state == "completed" and v.created == 1
    assert embedded.records("acme")['["ann@example.com"]']["name"] == 'Ann "A", line1\nline2'


def test_xlsx_made_by_openpyxl(harness: Harness, tmp_path: Path) -> None:
    import openpyxl

    token = _setup(harness)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["email", "name", "age"])
    for r in ROWS:
        ws.append(r)
    path = tmp_path / "book.xlsx"
    wb.save(path)
    v = _run(harness, token, path)
    assert v.state == "completed" and v.created == 3 and v.file is not None and v.file.format == "xlsx"
    _check(harness)


def test_xls_detected_by_content_even_when_named_csv(embedded: Harness, tmp_path: Path) -> None:
    import xlwt

    token = _setup(embedded)
    book = xlwt.Workbook()
    sheet = book.add_sheet("people")
    for c, value in enumerate(["email", "name", "age"]):
        sheet.write(0, c, value)
    for r, row in enumerate(ROWS, start=1):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    path = tmp_path / "looks-like.csv"
    book.save(str(path))
    v = _run(embedded, token, path)
    assert v.state == "completed" and v.created == 3 and v.file is not None and v.file.format == "xls"
    _check(embedded)


def test_a_file_that_is_no_spreadsheet_is_refused_before_any_ticket(embedded: Harness, tmp_path: Path) -> None:
    token = _setup(embedded)
    path = tmp_path / "x.csv"
    path.write_bytes(b"%PDF-1.7\n\x00\x01\x02\xff\xfe binary junk" * 10)
    resp = embedded.upload(token, path, dataset="contacts")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_file"
    from events.db import read_tx

    with read_tx(embedded.rt.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar() == 0


def test_missing_required_columns_are_a_400_at_submission(embedded: Harness, tmp_path: Path) -> None:
    token = _setup(embedded)
    resp = embedded.upload(token, write_csv(tmp_path / "x.csv", [["name", "age"], ["Ann", 3]]), dataset="contacts")
    assert resp.status_code == 400
    assert "email" in resp.json()["error"]["message"]


def test_row_errors_name_the_line_and_the_problem(embedded: Harness, tmp_path: Path) -> None:
    token = _setup(embedded)
    path = tmp_path / "r.csv"
    path.write_text("email,name,age\nann@example.com,Ann,34\nbob@example.com,Bob\nnot-an-email,Cy,3\n")
    v = _run(embedded, token, path)
    assert v.state == "completed" and (v.created, v.failed) == (1, 2)
    failures = [r for r in iter_results(v, frozenset({"f"}), embedded.rt.failures(v.ticket))]
    assert failures[0].line == 3 and "2 values" in (failures[0].error or "") and "3 columns" in (failures[0].error or "")
    assert failures[1].line == 4 and "email" in (failures[1].error or "")
