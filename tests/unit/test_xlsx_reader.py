"""The XLSX reader: cells as text, sheets, dates, and every valid way a workbook may be written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from actors.readers import BadRow, FileInfo, ReaderError, inspect_file
from tests.support import (
    NS,
    hand_xlsx,
    make_xlsx,
    sheet_xml,
    to_shared_strings,
)
from tests.support.files import rows_of

VALUES = [
    "text",
    42,
    -7,
    3.14,
    1e20,
    2.5e-7,
    True,
    False,
    dt.date(2024, 2, 29),
    dt.datetime(2024, 2, 29, 13, 5, 9),
    dt.datetime(2024, 2, 29, 13, 5, 9, 250000),
    dt.time(7, 30),
    None,
    'a & b <c> "d"',
    "  spaced  ",
    "multi\nline",
]


EXPECTED = [
    "text",
    "42",
    "-7",
    "3.14",
    "100000000000000000000",  # never an exponent: the text may go into a string field
    "0.00000025",
    "true",
    "false",
    "2024-02-29",
    "2024-02-29T13:05:09",
    "2024-02-29T13:05:09.250000",
    "07:30:00",
    None,
    'a & b <c> "d"',
    "  spaced  ",
    "multi\nline",
]


@pytest.mark.parametrize("shared", [False, True], ids=["inline-strings", "shared-strings"])
def test_xlsx_cells_are_normalised_to_text(tmp_path: Path, shared: bool) -> None:
    path = make_xlsx(
        tmp_path / "a.xlsx", {"Data": [[f"c{i}" for i in range(len(VALUES))], VALUES, VALUES]}
    )
    if shared:
        to_shared_strings(path)
    info, rows = rows_of(path)
    assert info == FileInfo(
        format="xlsx", sheet="Data", first_row=tuple(f"c{i}" for i in range(len(VALUES)))
    )
    assert rows[1:] == [(2, EXPECTED), (3, EXPECTED)]


def test_xlsx_trailing_empty_cells_are_trimmed_sparse_rows_keep_their_numbers(
    tmp_path: Path,
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["C1"] = "a", "c"
    ws["B4"] = 5
    ws["A9"], ws["E9"] = "x", None
    ws["D9"].number_format = "0.00"  # styled but empty
    path = tmp_path / "a.xlsx"
    wb.save(path)
    assert rows_of(path)[1] == [(1, ["a", None, "c"]), (4, [None, "5"]), (9, ["x"])]


def test_xlsx_error_cells_make_bad_rows_and_reading_goes_on(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "a.xlsx", {"S": [["a", "b"], [1, "#N/A"], ["#DIV/0!", 2], [3, 4]]})
    assert rows_of(path)[1] == [
        (1, ["a", "b"]),
        BadRow(2, "cell B2 holds the error #N/A"),
        BadRow(3, "cell A3 holds the error #DIV/0!"),
        (4, ["3", "4"]),
    ]


def test_xlsx_sheet_is_the_first_visible_unless_named(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Hidden"
    wb.active.append(["h"])
    wb.active.sheet_state = "hidden"
    wb.create_chartsheet("Chart")
    for name in ("One", "Two"):
        wb.create_sheet(name).append([name.lower()])
    path = tmp_path / "a.xlsx"
    wb.save(path)
    with pytest.raises(ReaderError, match="^sheet 'Chart' is a chartsheet, not a worksheet$"):
        inspect_file(path, sheet="Chart")
    assert rows_of(path)[0].sheet == "One"
    assert rows_of(path, sheet="Two") == (
        FileInfo(format="xlsx", sheet="Two", first_row=("two",)),
        [(1, ["two"])],
    )
    assert rows_of(path, sheet=" two ")[0].sheet == "Two"
    with pytest.raises(
        ReaderError, match=r"no sheet named 'Three'; its sheets are 'Hidden', 'Chart', 'One', 'Two'"
    ):
        inspect_file(path, sheet="Three")


def test_xlsx_1904_date_system(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    wb.active.append([dt.date(2020, 5, 17), dt.datetime(1999, 12, 31, 23, 59, 59)])
    path = tmp_path / "a.xlsx"
    wb.save(path)
    assert rows_of(path)[1] == [(1, ["2020-05-17", "1999-12-31T23:59:59"])]


def test_xlsx_custom_number_formats_decide_dates(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    formats = ["dd/mm/yyyy hh:mm", '"day" 0', "[Red]0.00", "[$-409]mmm d", "0.00", "h:mm AM/PM"]
    for col, fmt in enumerate(formats, 1):
        ws.cell(row=1, column=col, value=45000.25).number_format = fmt
    path = tmp_path / "a.xlsx"
    wb.save(path)
    assert rows_of(path)[1] == [
        (
            1,
            [
                "2023-03-15T06:00:00",
                "45000.25",
                "45000.25",
                "2023-03-15T06:00:00",
                "45000.25",
                "2023-03-15T06:00:00",
            ],
        )
    ]


def test_xlsx_rich_text_phonetics_formulas_and_missing_references(tmp_path: Path) -> None:
    strings = (
        f"<sst {NS}><si><t>plain</t></si>"
        '<si><r><rPr><b/></rPr><t>bold</t></r><r><t xml:space="preserve"> and normal</t></r></si>'
        '<si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh></si><si><t>a_x000D_b</t></si></sst>'
    )
    rows = (
        '<row r="2"><c t="s"><v>0</v></c><c t="s"><v>1</v></c><c r="E2" t="s"><v>2</v></c><c><v>7</v></c></row>'
        '<row><c r="A3" t="str"><f>A2&amp;"!"</f><v>plain!</v></c><c r="B3"><f>1+1</f><v>2</v></c>'
        '<c r="C3" t="inlineStr"><is><r><t>in</t></r><r><t>line</t></r></is></c><c r="D3" t="s"><v>3</v></c></row>'
        '<row r="4"><c r="A4" t="s"><v>99</v></c></row>'
    )
    path = hand_xlsx(tmp_path / "a.xlsx", sheet_xml(rows), strings=strings)
    assert rows_of(path)[1] == [
        (2, ["plain", "bold and normal", None, None, "漢字", "7"]),
        (3, ["plain!", "2", "inline", "a\rb"]),
        BadRow(4, "cell A4 refers to a shared string that does not exist"),
    ]


@pytest.mark.parametrize(
    "layout", ["indented", "prefixed", "comments-and-cdata", "single-quotes", "spaced-attributes"]
)
def test_xlsx_unusual_but_valid_xml_reads_the_same(tmp_path: Path, layout: str) -> None:
    plain = '<row r="1"><c r="A1" t="inlineStr"><is><t>a&amp;b</t></is></c><c r="B1"><v>1.50</v></c></row>'
    plain += '<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c><c r="B2"><v>2</v></c></row>'
    if layout == "indented":
        rows = (
            plain.replace("<row", "\n  <row")
            .replace("<c ", "\n    <c ")
            .replace("<v>", "\n      <v>")
        )
        xml = sheet_xml(rows).replace("</sheetData>", "\n</sheetData>")
    elif layout == "prefixed":
        xml = sheet_xml(plain.replace("<", "<x:").replace("<x:/", "</x:"), prefix="x")
    elif layout == "comments-and-cdata":
        rows = plain.replace("<t>a&amp;b</t>", "<t><![CDATA[a&b]]></t>").replace(
            '<row r="2">', '<!-- <row r="9"> --><row r="2"><?pi x?>'
        )
        xml = sheet_xml(rows)
    elif layout == "single-quotes":
        xml = sheet_xml(plain.replace('"', "'"))
    else:
        xml = sheet_xml(plain.replace('r="B', 'r = "B'))
    path = hand_xlsx(tmp_path / "a.xlsx", xml)
    assert rows_of(path)[1] == [(1, ["a&b", "1.5"]), (2, ["x", "2"])]


def test_xlsx_sheet_part_is_found_through_the_relationships(tmp_path: Path) -> None:
    xml = sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>')
    path = hand_xlsx(tmp_path / "a.xlsx", xml, sheet_part="/xl/data/first.xml")
    assert rows_of(path)[1] == [(1, ["1"])]


def test_xlsx_dimension_that_lies_does_not_matter_nor_do_columns_past_it(tmp_path: Path) -> None:
    xml = sheet_xml('<row r="1"><c r="A1"><v>1</v></c><c r="XFD1"><v>2</v></c></row>')
    rows = rows_of(hand_xlsx(tmp_path / "a.xlsx", xml))[1]
    assert rows[0][1][-1] == "2" and len(rows[0][1]) == 16384  # type: ignore[index]
    xml = sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><v>1</v></c><c r="XFE2"><v>2</v></c></row>'
    )
    assert rows_of(hand_xlsx(tmp_path / "b.xlsx", xml))[1] == [
        (1, ["1"]),
        BadRow(2, "cell reference 'XFE2' is not within the sheet's 16384 columns"),
    ]
