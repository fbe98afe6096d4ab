"""GET /imports/{id}/errors.csv and errors.xlsx: the failed rows as they were in the file, ready to fix."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from actors.readers import inspect_file, read_rows
from app.reports import error_csv
from events.projections import ImportView, fold
from events.types import ChunkApplied, FileParsed, ImportRequested, ImportSpec, RowFailure
from tests.support import Harness

ITEMS = {
    "fields": [
        {"name": "sku", "type": "string", "required": True},
        {"name": "qty", "type": "integer"},
        {"name": "note", "type": "string"},
    ],
    "key": ["sku"],
}


def _setup(h: Harness) -> dict[str, str]:
    token = str(h.tenant("acme")["native"]["token"])
    h.dataset("acme", "items", ITEMS)
    return {"Authorization": f"Bearer {token}"}


def _run(h: Harness, auth: dict[str, str], path: Path, **fields: Any) -> int:
    with path.open("rb") as fh:
        resp = h.client.post("/imports", data={"dataset": "items", **fields}, files={"file": (path.name, fh)}, headers=auth)
    assert resp.status_code == 202, resp.text
    ticket = int(resp.json()["id"])
    h.wait(ticket)
    return ticket


def test_errors_csv_gives_the_failed_rows_exactly_as_read(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    path = tmp_path / "items.csv"
    path.write_bytes(
        b"SKU,Qty,Note,Extra\r\n"
        b"00123,1,fine,x\r\n"
        b"00124,many,=HYPERLINK(\"http://evil\"),  spaced  \r\n"
        b"00125,2,ok\r\n"  # one value short: a row error
        b"00126,-3x,+1,@cmd\r\n"
        b"00127,5,last,\r\n"
    )
    ticket = _run(harness, auth, path)
    resp = harness.client.get(f"/imports/{ticket}/errors.csv", headers=auth)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert f'filename="import-{ticket}-errors.csv"' in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["SKU", "Qty", "Note", "Extra", "row_number", "error"]
    assert [r[:4] for r in rows[1:]] == [
        ["00124", "many", "'=HYPERLINK(\"http://evil\")", "  spaced  "],
        ["00125", "2", "ok", ""],
        ["00126", "'-3x", "'+1", "'@cmd"],
    ]
    assert [r[4] for r in rows[1:]] == ["3", "4", "5"]
    assert "qty" in rows[1][5] and "line 3" in rows[1][5]
    assert "3 values" in rows[2][5] and "4 columns" in rows[2][5]
    assert len(rows) == 4


def test_errors_csv_without_a_header_names_the_columns(embedded: Harness, tmp_path: Path) -> None:
    auth = _setup(embedded)
    path = tmp_path / "bare.csv"
    path.write_text("00001,1,a\n00002,x,b\n")
    ticket = _run(embedded, auth, path, headers="false")
    rows = list(csv.reader(io.StringIO(embedded.client.get(f"/imports/{ticket}/errors.csv", headers=auth).text)))
    assert rows[0] == ["column_1", "column_2", "column_3", "row_number", "error"]
    assert rows[1][:4] == ["00002", "x", "b", "2"]
    clean = tmp_path / "clean.csv"
    clean.write_text("sku,qty\nA1,1\n")
    ticket = _run(embedded, auth, clean)
    assert embedded.client.get(f"/imports/{ticket}/errors.csv", headers=auth).text == "sku,qty,row_number,error\r\n"


def test_errors_xlsx_types_cells_and_highlights_the_error_column(harness: Harness, tmp_path: Path) -> None:
    auth = _setup(harness)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sku", "qty", "note", "when"])
    sheet.append(["00123", 1, "fine", None])
    sheet.append(["00124", "lots", "=1+1", date(2024, 1, 15)])
    sheet.cell(3, 3).data_type = "s"  # text that looks like a formula
    sheet.append([None])  # a blank row: line numbers still follow the sheet
    sheet.append([4567, 2.5, "half", datetime(2024, 2, 1, 10, 30)])
    path = tmp_path / "items.xlsx"
    book.save(path)
    ticket = _run(harness, auth, path)
    resp = harness.client.get(f"/imports/{ticket}/errors.xlsx", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    (tmp_path / "report.xlsx").write_bytes(resp.content)
    report = openpyxl.load_workbook(tmp_path / "report.xlsx")
    ws = report.active
    assert ws is not None
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0] == ["sku", "qty", "note", "when", "row_number", "error"]
    assert values[1][:5] == ["00124", "lots", "=1+1", datetime(2024, 1, 15), 3]
    assert ws.cell(2, 3).data_type == "s"  # the text "=1+1", never a formula
    assert values[2][:5] == [4567, 2.5, "half", datetime(2024, 2, 1, 10, 30), 5]
    assert "qty" in values[1][5] and "qty" in values[2][5]
    assert ws.cell(1, 1).font.b and ws.cell(2, 6).fill.fgColor.rgb.endswith("FDE2E1")
    assert len(values) == 3


def test_reports_refuse_what_they_cannot_give(embedded: Harness, tmp_path: Path) -> None:
    auth = _setup(embedded)
    path = tmp_path / "a.csv"
    path.write_text("sku,qty\nA,x\n")
    ticket = _run(embedded, auth, path)
    refused = embedded.client.get(f"/imports/{ticket}/errors.xlsx", headers=auth)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_a_workbook"
    assert f"/imports/{ticket}/errors.csv" in refused.json()["error"]["message"]
    other = {"Authorization": f"Bearer {embedded.tenant('other')['native']['token']}"}
    for report in ("errors.csv", "errors.xlsx"):
        assert embedded.client.get(f"/imports/{ticket}/{report}", headers=other).status_code == 404
        assert embedded.client.get(f"/imports/{ticket}/{report}").status_code == 401
    assert not list((embedded.rt.blobs.root / "tmp").iterdir())  # no workbook left behind


@pytest.mark.slow
def test_errors_csv_streams_a_large_report_in_flat_memory(tmp_path: Path) -> None:
    """200,000 failed rows (about 9 MB of report) come out a piece at a time, about 1 MB held."""
    n = 200_000
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("sku,qty,note\n")
        fh.writelines(f"{i:08d},bad,note number {i}\n" for i in range(n))
    at = datetime(2024, 1, 1, tzinfo=UTC)
    size = 5000  # the default chunk size: the log holds each chunk's failures
    chunks = [
        ChunkApplied(
            at=at, chunk=c, first=c * size, runs=(("f", size),),
            failures=tuple(RowFailure(i, i + 2, f"line {i + 2}: qty: not an integer") for i in range(c * size, (c + 1) * size)),
        )
        for c in range(n // size)
    ]
    view = fold(
        [
            ImportRequested(at=at, tenant="acme", spec=ImportSpec(dataset="items"), uuid="u"),
            FileParsed(at=at, total_rows=n, chunks=len(chunks)),
            *chunks,
        ],
        ImportView(ticket=1),
    )
    info = inspect_file(path)
    tracemalloc.start()
    pieces = total = 0
    first = b""
    for piece in error_csv(view, read_rows(path, info)):
        first = first or piece
        pieces += 1
        total += len(piece)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert first.startswith(b"sku,qty,note,row_number,error\r\n00000000,bad,note number 0,2,")
    assert pieces > 350 and total > 9_000_000
    assert peak < 2_000_000, peak  # the reader's buffer, one chunk's failures, one piece
