"""Format detection by content, never by name: what is no table is named, what is renamed is read as what it is."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from actors.readers import FileInfo, ReaderError, inspect_file, open_file, xls_reader
from tests.support import (
    make_xlsx,
    write_xls,
    write_xlsx,
)
from tests.support.files import rows_of, write


def test_empty_blank_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="^file is empty$"):
        inspect_file(write(tmp_path, "a.csv", b""))
    with pytest.raises(ReaderError, match="no rows"):
        inspect_file(write(tmp_path, "b.csv", "\n,,\n\r\n"))
    with pytest.raises(ReaderError, match="binary data"):
        inspect_file(write(tmp_path, "c.csv", b"data" + random.Random(1).randbytes(5000)))


@pytest.mark.parametrize(
    ("data", "looks"),
    [
        (b"%PDF-1.7\n%...", "a PDF"),
        (b"\n<!DOCTYPE html><html><body><table>", "HTML"),
        (b"<html><head>", "HTML"),
        (
            b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
            "an Excel 2003 XML",
        ),
        (b"\x1f\x8b\x08\x00", "a gzip archive"),
    ],
)
def test_documents_that_are_no_table_are_named(tmp_path: Path, data: bytes, looks: str) -> None:
    with pytest.raises(ReaderError, match=rf"^not a CSV, XLSX or XLS file \(looks like {looks}"):
        inspect_file(write(tmp_path, "report.xls", data))  # the name says xls; the content decides


def test_xlsx_and_html_renamed_as_xls_are_read_as_what_they_are(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "report.xls", {"S": [["a", 1]]})
    assert rows_of(path) == (
        FileInfo(format="xlsx", sheet="S", first_row=("a", "1")),
        [(1, ["a", "1"])],
    )


def test_open_file_is_inspect_file_then_read_rows_with_one_load_of_an_xls_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xls = write_xls(tmp_path / "a.xls", [["name", "n"], ["Ann", 1], ["Bob", 2]])
    files = [
        xls,
        write_xlsx(tmp_path / "a.xlsx", [["name", "n"], ["Ann", 1]]),
        write(tmp_path, "a.csv", "name;n\nAnn;1\n"),
    ]
    for path in files:
        info, rows = open_file(path)
        assert (info, list(rows)) == rows_of(path)
    loads: list[str] = []
    load = xls_reader._read

    def counted(*args: Any) -> Any:
        loads.append("load")
        return load(*args)

    monkeypatch.setattr(xls_reader, "_read", counted)
    info, rows = open_file(xls, sheet="Sheet1")
    assert info.first_row == ("name", "n") and next(rows) == (1, ["name", "n"])
    rows.close()  # the rest is never read
    assert loads == ["load"]
    with pytest.raises(ReaderError, match="no sheet named 'Other'"):
        open_file(xls, sheet="Other")
