"""The XLSX reader's guards: no DTD ever expands, the unpacking budget and bomb ratio hold, damage is named, memory stays flat."""

from __future__ import annotations

import gc
import io
import time
import tracemalloc
import weakref
import zipfile
from pathlib import Path
from typing import Any

import pytest

from actors.readers import FileInfo, ReaderError, inspect_file, read_rows
from actors.readers.xlsx import strings as shared_strings
from tests.support import (
    NS,
    REL,
    RELNS,
    hand_xlsx,
    lie_about_size,
    make_xlsx,
    sheet_xml,
    to_shared_strings,
)
from tests.support.files import rows_of, write

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


@pytest.mark.parametrize("part", ["sheet", "strings", "workbook", "inside-the-sheet"])
def test_xlsx_xml_with_a_dtd_is_refused_before_any_entity_expands(
    tmp_path: Path, part: str
) -> None:
    sheet = sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c></row>')
    strings = f"<sst {NS}><si><t>a</t></si></sst>"
    workbook = f'<workbook {NS} {RELNS}><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
    bomb = BILLION_LAUGHS
    if part == "sheet":
        sheet = bomb + sheet.split("?>", 1)[1].replace(
            '<c r="A1" t="s"><v>0</v>', "<c><v>&lol9;</v>"
        )
    elif part == "inside-the-sheet":  # not even well-formed there, but must not expand either
        sheet = sheet.replace("<sheetData>", "<sheetData>" + bomb.split("?>", 1)[1])
    elif part == "strings":
        strings = bomb + strings.replace("<t>a</t>", "<t>&lol9;</t>")
    else:
        workbook = (
            '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + workbook.replace('name="S"', 'name="&x;"')
        )
    path = hand_xlsx(tmp_path / "a.xlsx", sheet, strings=strings, workbook=workbook)
    start = time.monotonic()
    refused = (
        "corrupt workbook"
        if part == "inside-the-sheet"
        else r"^workbook XML declares a DTD/entities; refused$"
    )
    with pytest.raises(ReaderError, match=refused):
        rows_of(path)
    assert time.monotonic() - start < 2


def test_xlsx_budget_counts_declared_sizes(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "a.xlsx", {"S": [["x" * 100] * 20] * 50})
    with pytest.raises(
        ReaderError, match=r"^workbook is too large when unpacked \(over 2000 bytes"
    ):
        inspect_file(path, max_unpacked_bytes=2000)


def test_xlsx_zip_bomb_is_refused_by_its_ratio_before_inflating(tmp_path: Path) -> None:
    rows = '<row r="1"><c r="A1"><v>1</v></c></row>' + "<row/>" * 3_000_000  # ~18 MB of XML
    path = hand_xlsx(tmp_path / "a.xlsx", sheet_xml(rows))
    assert path.stat().st_size < 200_000
    start = time.monotonic()
    with pytest.raises(ReaderError, match="too large when unpacked"):
        inspect_file(path)
    assert time.monotonic() - start < 2


def test_xlsx_declared_size_that_lies_is_caught_while_inflating(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>' for i in range(1, 20_000))
    path = hand_xlsx(tmp_path / "a.xlsx", sheet_xml(rows))
    # Declare 1000 bytes in both the local header and the central directory entry.
    lie_about_size(path, "xl/worksheets/sheet1.xml", 1000)
    with pytest.raises(ReaderError, match="corrupt or truncated workbook"):
        rows_of(path)


def test_xlsx_shared_strings_over_their_cap_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_strings, "SST_TEXT_LIMIT", 10_000)
    path = to_shared_strings(
        make_xlsx(tmp_path / "a.xlsx", {"S": [[f"{i:05d}" + "x" * 100] for i in range(200)]})
    )
    with pytest.raises(ReaderError, match="shared strings exceed 10000 characters"):
        rows_of(path)


def test_xlsx_truncated_or_not_a_workbook(tmp_path: Path) -> None:
    good = make_xlsx(tmp_path / "a.xlsx", {"S": [[i, f"v{i}"] for i in range(3000)]}).read_bytes()
    for cut in (len(good) // 2, len(good) - 30, 100):
        with pytest.raises(ReaderError, match="corrupt or truncated workbook"):
            rows_of(write(tmp_path, f"cut{cut}.xlsx", good[:cut]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ReaderError, match="^zip archive is not an XLSX workbook$"):
        inspect_file(write(tmp_path, "b.xlsx", buf.getvalue()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="x"><Relationship Id="r" Type="{REL}/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", "<document/>")
    with pytest.raises(ReaderError, match="^zip archive is not an XLSX workbook$"):
        inspect_file(write(tmp_path, "c.docx", buf.getvalue()))


def test_xlsx_peak_memory_does_not_grow_with_the_sheet(tmp_path: Path) -> None:
    def peak(rows: int) -> int:
        body = "".join(
            f'<row r="{i}"><c r="A{i}"><v>{i}</v></c><c r="B{i}" t="inlineStr"><is><t>name {i}</t></is></c></row>'
            for i in range(1, rows + 1)
        )
        path = hand_xlsx(tmp_path / f"m{rows}.xlsx", sheet_xml(body))
        info = inspect_file(path)
        tracemalloc.start()
        try:
            assert sum(1 for _ in read_rows(path, info)) == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(10_000), peak(60_000)
    assert large < 1.25 * small  # the same few chunks in flight, however long the sheet


def test_xlsx_shared_strings_are_freed_when_the_read_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is dropped as the read ends, not at the next full collection: rows read by expat
    and rich-text entries make reference cycles around it (their parsers' handlers)."""
    made: list[weakref.ref[shared_strings.SharedStrings]] = []
    init = shared_strings.SharedStrings.__init__

    def remembered(self: shared_strings.SharedStrings, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        made.append(weakref.ref(self))

    monkeypatch.setattr(shared_strings.SharedStrings, "__init__", remembered)
    entries = "".join(f"<si><t>entry {i}</t></si>" for i in range(500)) + "<si><r><t>ri</t></r><r><t>ch</t></r></si>"
    rows = "".join(f'<row r="{i}"><c r="A{i}" t="s"><v>{i - 1}</v></c><c r="B{i}"><v>{i}</v></c></row>' for i in range(1, 502))
    rows += '<row r="502"><c r="A502" t="s"><v>0</v><!-- read by expat --></c></row>'
    path = hand_xlsx(tmp_path / "s.xlsx", sheet_xml(rows), strings=f"<sst {NS}>{entries}</sst>")
    gc.disable()
    try:
        for fast in (True, False):
            got = list(read_rows(path, FileInfo(format="xlsx", sheet="S"), fast=fast))
            assert got[500] == (501, ["rich", "501"]) and got[501] == (502, ["entry 0"])
            assert all(ref() is None or not ref().count for ref in made)
    finally:
        gc.enable()
