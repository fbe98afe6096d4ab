"""The XLS reader: cells, sheets and error cells; the streamed reading against xlrd's; password-protected compound files."""

from __future__ import annotations

import datetime as dt
import random
import struct
from pathlib import Path

import pytest

from actors.readers import BadRow, FileInfo, ReaderError, inspect_file
from actors.readers.xls_reader import read_xls
from tests.support import compound_file, need_module
from tests.support.files import rows_of, write


def test_xls_cells_sheets_and_errors(tmp_path: Path) -> None:
    xlwt = need_module("xlwt")
    wb = xlwt.Workbook()
    ws = wb.add_sheet("First")
    date = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    stamp = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    clock = xlwt.easyxf(num_format_str="hh:mm")
    for col, value in enumerate(["name", "n", "f", "flag", "day", "at", "time"]):
        ws.write(0, col, value)
    ws.write(1, 0, "Zoë")
    ws.write(1, 1, 42)
    ws.write(1, 2, 3.25)
    ws.write(1, 3, True)
    ws.write(1, 4, dt.date(2024, 2, 29), date)
    ws.write(1, 5, dt.datetime(2024, 2, 29, 8, 15, 30), stamp)
    ws.write(1, 6, dt.time(18, 45), clock)
    ws.row(2).set_cell_error(1, "#DIV/0!")
    ws.write(5, 2, "gap")
    wb.add_sheet("Second").write(0, 0, "other")
    path = tmp_path / "a.xls"
    wb.save(str(path))
    info, rows = rows_of(path)
    assert info == FileInfo(
        format="xls", sheet="First", first_row=("name", "n", "f", "flag", "day", "at", "time")
    )
    assert rows[1:] == [
        (2, ["Zoë", "42", "3.25", "true", "2024-02-29", "2024-02-29T08:15:30", "18:45:00"]),
        BadRow(3, "cell B3 holds the error #DIV/0!"),
        (6, [None, None, "gap"]),
    ]
    assert rows_of(path, sheet="Second")[1] == [(1, ["other"])]
    with pytest.raises(ReaderError, match=r"its sheets are 'First', 'Second'"):
        inspect_file(path, sheet="Third")
    data = path.read_bytes()
    with pytest.raises(ReaderError, match="corrupt or"):
        rows_of(write(tmp_path, "cut.xls", data[: len(data) // 2]))


def test_xls_streamed_reads_what_xlrd_reads_error_cells_included(tmp_path: Path) -> None:
    """The fast path (the sheet's records streamed) against xlrd's reading of the same sheet."""
    xlwt = need_module("xlwt")
    rng = random.Random(7)
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Data")
    later = wb.add_sheet("Later")  # its error cells must not leak into "Data"
    later.row(5).set_cell_error(1, 7)
    later.row(9).set_cell_error(0, 7)
    ws.row(0).set_cell_error(0, 42)  # #N/A (xlwt's own names are off: codes are safer)
    day = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    codes = [0, 7, 15, 23, 29, 36, 42]  # #NULL! #DIV/0! #VALUE! #REF! #NAME? #NUM! #N/A
    for r in range(1, 3000):
        if r % 97 == 0:
            continue  # a blank row
        ws.write(r, 0, f"name {r}")
        ws.write(r, 1, rng.choice([r, r + 0.5, -r, 10**15 + r]))
        ws.write(r, 2, dt.date(2020, 1, 1) + dt.timedelta(days=r), day)
        ws.write(r, 3, rng.random() < 0.5)
        if r % 37 == 0:
            ws.row(r).set_cell_error(rng.randrange(4, 7), rng.choice(codes))
        if r % 53 == 0:
            ws.write(r, 6, "")  # an empty text cell past the data
    path = tmp_path / "big.xls"
    wb.save(str(path))
    fast = list(read_xls(path, "Data"))
    slow = list(read_xls(path, "Data", fast=False))
    assert fast == slow
    assert sum(isinstance(row, BadRow) for row in fast) == 1 + len([r for r in range(1, 3000) if r % 37 == 0 and r % 97])
    assert isinstance(fast[0], BadRow) and fast[0].message == "cell A1 holds the error #N/A"
    # A sheet whose first used cell is C4, with an error past its last value row and column.
    shifted = xlwt.Workbook()
    sh = shifted.add_sheet("Shifted")
    sh.write(3, 2, "c4")
    sh.write(4, 3, 2.0)
    sh.row(8).set_cell_error(5, 7)
    shifted.save(str(tmp_path / "shifted.xls"))
    fast = list(read_xls(tmp_path / "shifted.xls", None))
    assert fast == list(read_xls(tmp_path / "shifted.xls", None, fast=False))
    assert fast == [(4, [None, None, "c4"]), (5, [None, None, None, "2"]), BadRow(9, "cell F9 holds the error #DIV/0!")]


def test_password_protected_workbooks_are_named_so(tmp_path: Path) -> None:
    encrypted_xlsx = compound_file(
        {"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x10" * 100}
    )
    with pytest.raises(ReaderError, match="^workbook is password-protected$"):
        inspect_file(write(tmp_path, "secret.xlsx", encrypted_xlsx))
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0, 0, 0, 0)
    filepass = struct.pack("<HHH", 0x002F, 2, 0)
    eof = struct.pack("<HH", 0x000A, 0)
    with pytest.raises(ReaderError, match="^workbook is password-protected$"):
        inspect_file(
            write(tmp_path, "secret.xls", compound_file({"Workbook": bof + filepass + eof}))
        )
    with pytest.raises(ReaderError, match="corrupt or unsupported XLS workbook"):
        inspect_file(write(tmp_path, "other.doc", compound_file({"WordDocument": b"x" * 10})))


def test_xls_columns_converted_in_blocks_read_what_xlrd_reads(tmp_path: Path) -> None:
    """Long columns of one kind each (converted a run at a time) read as xlrd reads them, an error
    cell however late it comes included."""
    xlwt = need_module("xlwt")
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Data", cell_overwrite_ok=True)
    day = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    stamp = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    for r in range(2500):
        values = [f"t{r}", r, -0.0 if r % 7 == 0 else r + 0.25, r * 1e-7, 2**53 + r, r % 3 == 0]
        for c, value in enumerate(values):
            ws.write(r, c, value)
        ws.write(r, 6, dt.date(2020, 1, 1) + dt.timedelta(days=r), day)
        ws.write(r, 7, dt.datetime(2020, 1, 1) + dt.timedelta(hours=r), stamp)
    full = tmp_path / "full.xls"
    wb.save(str(full))
    ws.row(2100).set_cell_error(3, "#DIV/0!")  # the first empty-looking cell, two blocks in
    ws.write(2600, 1, "after a blank row")
    late = tmp_path / "late.xls"
    wb.save(str(late))
    fast = list(read_xls(full, None))
    assert fast == list(read_xls(full, None, fast=False))
    assert fast[0][1][2] == "0" and fast[1] == (2, ["t1", "1", "1.25", "0.0000001", "9007199254740992", "false", "2020-01-02", "2020-01-01T01:00:00"])
    fast = list(read_xls(late, None))
    assert fast == list(read_xls(late, None, fast=False))
    assert fast[2100] == BadRow(2101, "cell D2101 holds the error #DIV/0!")
    assert fast[-1] == (2601, [None, "after a blank row"])
