"""The streamed XLS reading on handmade sheets: layouts that change, rows that run on past a run,
odd records, rows out of order, memory, and hostile files (each a clear ReaderError, quickly)."""

from __future__ import annotations

import datetime as dt
import struct
import tracemalloc
from pathlib import Path

import pytest

from actors.readers import BadRow, ReaderError, inspect_file, open_file
from actors.readers.xls_reader import read_xls
from actors.readers.xls_strings import SharedStrings
from tests.support import compound_file, need_module
from tests.support.files import write
from tests.support.handmade import biff8_stream, biff_cell, biff_record


def _sst(row: int, col: int, index: int) -> bytes:
    return biff_cell(0xFD, row, col, struct.pack("<I", index))


def _num(row: int, col: int, value: float) -> bytes:
    return biff_cell(0x203, row, col, struct.pack("<d", value))


def _rk(row: int, col: int, n: int) -> bytes:
    return biff_cell(0x27E, row, col, struct.pack("<i", (n << 2) | 2))


def _bool(row: int, col: int, value: int, error: int = 0) -> bytes:
    return biff_cell(0x205, row, col, bytes([value, error]))


def _row(row: int) -> bytes:
    return biff_record(0x208, struct.pack("<HHHHHHI", row, 0, 3, 255, 0, 0, 0x100))


def _formula(row: int, col: int, result: bytes) -> bytes:
    return biff_cell(
        0x06, row, col, result + b"\0\0" + b"\0" * 4 + b"\0\0"
    )  # flags, chn, no tokens


def _string(text: str) -> bytes:
    return biff_record(0x207, struct.pack("<HB", len(text), 0) + text.encode("latin-1"))


def _book(tmp_path: Path, cells: bytes, strings: list[str], name: str = "h.xls", **kw: int) -> Path:
    return write(tmp_path, name, compound_file({"Workbook": biff8_stream(cells, strings, **kw)}))


def _both(path: Path) -> list[tuple[int, list[str | None]] | BadRow]:
    fast = list(read_xls(path, None))
    assert fast == list(read_xls(path, None, fast=False))
    return fast


def test_changing_layouts_and_odd_records_read_as_xlrd_reads_them(tmp_path: Path) -> None:
    strings = ["name", "", *(f"s{i}" for i in range(40))]
    parts = [
        _row(r) + _sst(r, 0, 2 + r % 40) + _rk(r, 1, r) for r in range(50)
    ]  # xlwt's way: ROW first
    # rows that hold one more cell than the run's layout: the run must not cut them short
    parts += [
        _row(r) + _sst(r, 0, 2 + r % 40) + _rk(r, 1, r) + _num(r, 2, r / 8) for r in range(50, 100)
    ]
    parts.append(_num(100, 2, 1.5) + _sst(100, 0, 3))  # cells out of column order within the row
    result = struct.pack("<BxBxxxH", 0, 0, 0xFFFF)
    parts.append(
        _formula(101, 0, result)
        + _string("made by a formula")
        + _formula(101, 1, struct.pack("<d", 2.5))
    )
    parts.append(
        _formula(102, 0, struct.pack("<BxBxxxH", 1, 1, 0xFFFF))
        + biff_cell(0x204, 102, 1, struct.pack("<HB", 3, 0) + b"lbl")
    )
    parts.append(_formula(103, 3, struct.pack("<BxBxxxH", 2, 0x07, 0xFFFF)) + _sst(103, 0, 4))
    for r in range(
        104, 1400
    ):  # Excel's way: no ROW records among the cells, a DBCELL every 32 rows
        parts.append(
            _sst(r, 0, 1 if r == 1200 else 2 + r % 40)
            + _rk(r, 1, -r)
            + _bool(r, 2, r % 2, int(r == 1000))
        )
        if r % 32 == 0:
            parts.append(biff_record(0xD7, b"\0" * 8))
    mulrk = (
        struct.pack("<HH", 2400, 1)
        + struct.pack("<Hi", 0, (7 << 2) | 2)
        + struct.pack("<Hi", 0, (8 << 2) | 3)
        + struct.pack("<H", 2)
    )
    parts.append(
        biff_record(0xBD, mulrk) + biff_record(0xBE, struct.pack("<HHHHH", 2400, 3, 0, 0, 4))
    )
    rows = _both(_book(tmp_path, b"".join(parts), strings))
    by_number = {row.line if isinstance(row, BadRow) else row[0]: row for row in rows}
    assert by_number[1] == (1, ["s0", "0"]) and by_number[51] == (51, ["s10", "50", "6.25"])
    assert by_number[101] == (101, ["s1", None, "1.5"])
    assert by_number[102] == (102, ["made by a formula", "2.5"])
    assert by_number[103] == (103, ["true", "lbl"])
    assert by_number[104] == BadRow(104, "cell D104 holds the error #DIV/0!")
    assert by_number[1001] == BadRow(1001, "cell C1001 holds the error #NULL!")
    assert by_number[1201] == (1201, [None, "-1200", "false"])
    assert by_number[2401] == (2401, [None, "7", "0.08"])
    assert len(rows) == 1400 + 1  # rows 0-1399 and 2400: no row lost or doubled


def test_rows_stored_out_of_order_are_refused_never_reordered(tmp_path: Path) -> None:
    cells = b"".join(_sst(r, 0, 0) + _rk(r, 1, r) for r in (0, 1, 2, 5, 6, 3, 7))
    path = _book(tmp_path, cells, ["a"])
    assert [row[0] for row in read_xls(path, None, fast=False)] == [
        1,
        2,
        3,
        4,
        6,
        7,
        8,
    ]  # xlrd sorts
    info, rows = open_file(path)
    assert info.first_row == ("a", "0")
    with pytest.raises(
        ReaderError,
        match=r"^sheet 'S': its cells for row 4 are stored after row 7; XLS rows must be stored once and in order",
    ):
        list(rows)
    # a row that comes back after other rows, in a run and read record by record
    again = b"".join(_sst(r, 0, 0) for r in range(3)) + _rk(1, 1, 9)
    with pytest.raises(ReaderError, match="row 2 are stored after row 3"):
        list(read_xls(_book(tmp_path, again, ["a"], name="again.xls"), None))
    # a row written twice, inside a run of one layout
    twice = b"".join(_sst(r, 0, 0) for r in (0, 1, 1, 2))
    with pytest.raises(ReaderError, match=r"^sheet 'S': row 2 is stored in two places; XLS rows must be stored once"):
        list(read_xls(_book(tmp_path, twice, ["a"], name="twice.xls"), None))
    # blank cells hold nothing: a blank for an earlier row is no reason to refuse
    blank = _sst(0, 0, 0) + _sst(1, 0, 0) + biff_cell(0x201, 0, 3, b"") + _sst(2, 0, 0)
    assert _both(_book(tmp_path, blank, ["a"], name="blank.xls")) == [
        (1, ["a"]),
        (2, ["a"]),
        (3, ["a"]),
    ]


def _numbers_sheet(path: Path, rows: int) -> Path:
    xlwt = need_module("xlwt")
    wb = xlwt.Workbook()
    ws = wb.add_sheet("N")
    day = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for r in range(rows):
        for c in range(6):
            ws.write(r, c, r * 7 + c + 0.5)
        ws.write(r, 6, dt.date(2000, 1, 1) + dt.timedelta(days=r % 9000), day)
    wb.save(str(path))
    return path


def _peaks(path: Path) -> tuple[int, int]:
    """Python's peak allocation for the first-row check, then for reading every row."""
    tracemalloc.start()
    try:
        inspect_file(path)
        first = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        assert sum(1 for _ in read_xls(path, None)) > 0
        return first, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_holds_a_run_of_rows_not_the_sheet(tmp_path: Path) -> None:
    small = _peaks(_numbers_sheet(tmp_path / "small.xls", 8_000))
    large = _peaks(_numbers_sheet(tmp_path / "large.xls", 32_000))
    assert large[0] < 1 << 20, large  # the first row's check: the globals and one row
    assert large[1] < small[1] * 1.25 + (256 << 10), (small, large)  # 4x the rows, the same memory


def _fat_loop(data: bytes) -> bytes:
    """The workbook stream's sector chain (sectors 2..9) turned back on itself at sector 5."""
    out = bytearray(data)
    struct.pack_into("<I", out, 512 + 4 * 5, 3)
    return bytes(out)


def _huge_size(data: bytes) -> bytes:
    """The workbook stream's directory entry claiming 2 GB."""
    out = bytearray(data)
    struct.pack_into("<I", out, 1024 + 128 + 120, 0x7FFFFFF0)
    return bytes(out)


def test_hostile_xls_files_give_a_clear_reader_error_quickly(tmp_path: Path) -> None:
    good = [_sst(r, 0, r % 2) + _rk(r, 1, r) for r in range(40)]
    stream = biff8_stream(b"".join(good), ["a", "b"])
    cases = {
        "no EOF": (compound_file({"Workbook": stream[:-4]}), "a sheet ends without its EOF record"),
        "a record past the end": (
            compound_file(
                {
                    "Workbook": biff8_stream(
                        b"".join(good) + struct.pack("<HH", 0xFD, 0xFFFF), ["a", "b"]
                    )[:-4]
                }
            ),
            "a record runs past the end of the stream",
        ),
        "a bad shared-string index, first row": (
            compound_file({"Workbook": biff8_stream(_sst(0, 0, 7), ["a"])}),
            "refers to shared string 7, but there are 1",
        ),
        "a bad shared-string index, in a run": (
            compound_file(
                {
                    "Workbook": biff8_stream(
                        b"".join(good) + _sst(40, 0, 99) + _rk(40, 1, 0), ["a", "b"]
                    )
                }
            ),
            "refers to shared string 99, but there are 2",
        ),
        "an SST that claims more strings than it holds, a cell past them": (
            compound_file(
                {
                    "Workbook": biff8_stream(b"".join(good) + _sst(40, 0, 5), ["a", "b"]).replace(
                        struct.pack("<ii", 2, 2), struct.pack("<ii", 2, 1 << 30), 1
                    )
                }
            ),
            "refers to shared string 5, but there are 2",
        ),
        "a sheet offset past the stream": (
            compound_file({"Workbook": biff8_stream(b"".join(good), ["a"], sheet_offset=1 << 30)}),
            "corrupt",
        ),
        "a loop in the sector chain": (
            _fat_loop(compound_file({"Workbook": stream})),
            "corrupt or",
        ),
        "a stream that claims 2 GB": (
            _huge_size(compound_file({"Workbook": stream})),
            "corrupt or",
        ),
    }
    for case, (data, message) in cases.items():
        path = write(tmp_path, "bad.xls", data)
        tracemalloc.start()
        try:
            with pytest.raises(ReaderError, match=message):
                list(read_xls(path, None))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, (case, peak)


def _sst_entry(text: str, *, wide: bool = False, runs: int = 0, phonetic: bytes = b"") -> bytes:
    flags = (1 if wide else 0) | (8 if runs else 0) | (4 if phonetic else 0)
    head = struct.pack("<HB", len(text), flags)
    head += struct.pack("<H", runs) if runs else b""
    head += struct.pack("<I", len(phonetic)) if phonetic else b""
    chars = text.encode("utf-16-le" if wide else "latin-1")
    return head + chars + b"\x01\x00\x02\x00" * runs + phonetic


def test_shared_strings_decode_as_xlrd_decodes_them_lazily_and_across_continues() -> None:
    xlrd_book = pytest.importorskip("xlrd.book")
    entries = [
        _sst_entry("plain"),
        _sst_entry(""),
        _sst_entry("Zoë ünïcode", wide=True),
        _sst_entry("rich", runs=3),
        _sst_entry("phonetic", phonetic=b"\x07" * 9),
        _sst_entry("both", wide=True, runs=2, phonetic=b"\x01" * 5),
        *(_sst_entry(f"s{i}") for i in range(50)),
    ]
    body = b"".join(entries)
    between = len(b"".join(entries[:20]))
    # Cut into CONTINUE pieces: between strings, and inside a string's characters (the rest of the
    # characters after a flags byte of their own: here they go on two bytes a character).
    long_text = "x" * 40 + "Ω" * 30
    split = _sst_entry(long_text, wide=True)
    cut = 3 + 2 * 25  # inside the characters
    pieces = [
        struct.pack("<ii", 0, len(entries) + 2) + body[:between],
        body[between:] + split[:cut],
        b"\x01" + split[cut:] + _sst_entry("after") + struct.pack("<HB", 40, 0) + b"y" * 30,
        b"\x01" + ("y" * 2 + "Ω" * 8).encode("utf-16-le"),  # one byte a character, then two
    ]
    expected, _ = xlrd_book.unpack_SST_table(pieces, len(entries) + 3)
    table = SharedStrings(pieces, len(entries) + 3)
    assert table.ensure(3) == 3 and table.items == expected[:3]  # decoded only as far as asked
    assert table.ensure(10**6) == len(expected) and table.items == expected
    assert expected[-3:] == [long_text, "after", "y" * 32 + "Ω" * 8]
    # a table that claims more strings than its bytes hold ends where they end
    short = SharedStrings([struct.pack("<ii", 0, 1 << 30) + body], 1 << 30)
    assert short.ensure(1 << 30) == len(entries)
