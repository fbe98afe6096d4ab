"""The readers: format detection, CSV/XLSX/XLS rows, and refusal of hostile or broken files."""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.readers import (
    BadRow,
    FileInfo,
    ReaderError,
    csv_reader,
    inspect_file,
    read_rows,
    xlsx_reader,
)
from tests.support import need_module

Rows = list[tuple[int, list[str | None]] | BadRow]


def rows_of(path: Path, **kw: object) -> tuple[FileInfo, Rows]:
    info = inspect_file(path, **kw)  # type: ignore[arg-type]
    return info, list(read_rows(path, info))


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("sep", [",", "\t", "|", ";"])
def test_csv_separator_is_sniffed_and_quotes_hold_separators_quotes_and_newlines(
    tmp_path: Path, sep: str
) -> None:
    text = (
        f'name{sep}note{sep}n\n"Smith{sep} J"{sep}"said ""hi""\nand left"{sep}1\nplain{sep}{sep}2\n'
    )
    info, rows = rows_of(write(tmp_path, "a.csv", text))
    assert info.format == "csv" and info.separator == sep and info.encoding == "utf-8"
    assert info.first_row == ("name", "note", "n")
    assert rows == [
        (1, ["name", "note", "n"]),
        (2, [f"Smith{sep} J", 'said "hi"\nand left', "1"]),
        (4, ["plain", "", "2"]),  # the record started on line 2 spans two lines
    ]


def test_csv_given_separator_wins_over_the_sniff(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a;b,c\n1;2,3\n")
    assert rows_of(path, separator=",")[1] == [(1, ["a;b", "c"]), (2, ["1;2", "3"])]
    assert rows_of(path, separator="tab")[0].separator == "\t"
    with pytest.raises(ReaderError, match="not a single character"):
        inspect_file(path, separator=";;")


def test_csv_one_column_defaults_to_comma_and_headerless_files_read_the_same(
    tmp_path: Path,
) -> None:
    info, rows = rows_of(write(tmp_path, "a.csv", "alpha\nbeta\n"))
    assert info.separator == "," and rows == [(1, ["alpha"]), (2, ["beta"])]


def test_csv_semicolon_with_decimal_commas_is_not_mistaken_for_comma(tmp_path: Path) -> None:
    info, rows = rows_of(write(tmp_path, "a.csv", "a;b;c\n1,5;2;3\n4;5,25;6\n"))
    assert info.separator == ";" and rows[1] == (2, ["1,5", "2", "3"])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_endings_keep_line_numbers(tmp_path: Path, newline: str) -> None:
    text = newline.join(["a,b", '"x', 'y",1', "", "c,d", ""])
    _, rows = rows_of(write(tmp_path, "a.csv", text))
    assert [r[0] for r in rows] == [1, 2, 5]  # type: ignore[index]
    assert rows[1] == (2, [f"x{newline}y", "1"])


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_csv_line_numbers_hold_across_read_blocks(tmp_path: Path, newline: str) -> None:
    text = "id,text\n" + "".join(f'{i},"two{newline}lines"{newline}' for i in range(1, 30_000))
    _, rows = rows_of(write(tmp_path, "a.csv", text))
    assert len(rows) == 30_000
    assert rows[-1] == (59_998, ["29999", f"two{newline}lines"])


def test_csv_mixed_line_endings(tmp_path: Path) -> None:
    _, rows = rows_of(write(tmp_path, "a.csv", "a,b\r\nc,d\ne,f\rg,h"))
    assert rows == [(1, ["a", "b"]), (2, ["c", "d"]), (3, ["e", "f"]), (4, ["g", "h"])]


def test_csv_blank_rows_are_skipped_and_ragged_rows_kept(tmp_path: Path) -> None:
    _, rows = rows_of(write(tmp_path, "a.csv", "a,b,c\n\n,,\n1\n1,2,3,4\n"))
    assert rows == [(1, ["a", "b", "c"]), (4, ["1"]), (5, ["1", "2", "3", "4"])]


def test_csv_utf8_bom_never_leaks_into_the_first_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfid,name\n1,\xc3\xa9\n")
    info, rows = rows_of(path)
    assert info.encoding == "utf-8-sig" and info.first_row == ("id", "name")
    assert rows[1] == (2, ["1", "é"])
    assert rows_of(path, encoding="utf-8")[0].first_row == ("id", "name")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_csv_utf16_with_bom_is_decoded(tmp_path: Path, codec: str) -> None:
    bom = "\ufeff".encode(codec)
    path = write(tmp_path, "a.csv", bom + "id\tname\n1\tZoë\n".encode(codec))
    info, rows = rows_of(path)
    assert info.encoding == "utf-16" and info.separator == "\t"
    assert rows == [(1, ["id", "name"]), (2, ["1", "Zoë"])]


def test_csv_utf16_without_bom_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(
        ReaderError, match="UTF-16 without a byte-order mark; pass encoding=utf-16-le"
    ):
        inspect_file(write(tmp_path, "a.csv", "id,name\n1,x\n".encode("utf-16-le")))


def test_csv_invalid_utf8_names_the_line_and_suggests_an_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b\n1,2\nCaf\xe9,3\n", encoding="cp1252")
    with pytest.raises(ReaderError) as err:
        inspect_file(path)
    assert str(err.value) == (
        "file is not valid UTF-8 (byte 0xe9 at line 3); "
        "re-save it as UTF-8 or pass encoding=cp1252 (or the encoding it was saved in)"
    )
    assert rows_of(path, encoding="cp1252")[1][2] == (3, ["Café", "3"])


def test_csv_invalid_utf8_past_the_sample_fails_while_reading_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n" + b"1,2\n" * 30_000 + b"\xff,3\n")
    info = inspect_file(path)
    rows = read_rows(path, info)
    with pytest.raises(ReaderError, match=r"byte 0xff at line 30002\)"):
        for _ in rows:
            pass


def test_csv_unknown_or_non_text_encoding_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a\n")
    for name in ("klingon", "hex"):
        with pytest.raises(ReaderError, match="unknown text encoding"):
            inspect_file(path, encoding=name)


def test_csv_nul_byte_is_a_bad_row_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b\n" + "1,2\n" * 50 + "x\x00y,3\n4,5\n")
    _, rows = rows_of(path)
    assert rows[51] == BadRow(52, "contains a NUL byte")
    assert rows[52] == (53, ["4", "5"])


def test_csv_over_long_field_on_one_line_is_a_bad_row(tmp_path: Path) -> None:
    big = "x" * (csv_reader.FIELD_LIMIT + 10)
    _, rows = rows_of(write(tmp_path, "a.csv", f"a,b\n1,{big}\n2,3\n"))
    assert rows == [
        (1, ["a", "b"]),
        BadRow(2, f"row has a field longer than {csv_reader.FIELD_LIMIT} characters"),
        (3, ["2", "3"]),
    ]


def test_csv_over_long_line_of_many_fields_is_a_bad_row(tmp_path: Path) -> None:
    line = ",".join(["abcdefgh"] * (csv_reader.RECORD_LIMIT // 8))
    _, rows = rows_of(write(tmp_path, "a.csv", f"a,b\n{line}\n2,3\n"))
    assert rows[1] == BadRow(2, f"row is longer than {csv_reader.RECORD_LIMIT} characters")
    assert rows[2] == (3, ["2", "3"])


def test_csv_quote_that_never_closes_names_the_line_where_it_opened(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b\n1,2\n3,"never closed\n4,5\n6,7\n')
    info = inspect_file(path)
    with pytest.raises(
        ReaderError, match=r"^line 3: a quote \(\"\) opened in this record never closes$"
    ):
        list(read_rows(path, info))


def test_csv_runaway_quote_stops_at_the_field_limit_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b\n1,"runaway\n' + "more text, and more\n" * 300_000)
    info = inspect_file(path)
    tracemalloc.start()
    try:
        with pytest.raises(
            ReaderError, match=r"^line 2: a quoted field runs past 1048576 characters"
        ):
            list(read_rows(path, info))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * csv_reader.FIELD_LIMIT  # a few copies of one field, not the file


def test_csv_decoding_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,email,amount\n")
        line = "{0},Name {0} Ünïcode,user{0}@example.com,{0}.25\n"
        for i in range(0, 300_000, 1000):
            out.write("".join(line.format(n) for n in range(i, i + 1000)))
    size = path.stat().st_size
    assert size > 15_000_000
    info = inspect_file(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_rows(path, info))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 300_001
    assert peak < 2_000_000, f"peak {peak} bytes for a {size}-byte file"


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


# ---------------------------------------------------------------- XLSX built by openpyxl


def make_xlsx(
    path: Path, sheets: dict[str, list[list[object]]], *, write_only: bool = False
) -> Path:
    wb = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        wb.remove(wb.active)
    for title, data in sheets.items():
        ws = wb.create_sheet(title)
        for row in data:
            ws.append(row)
    wb.save(path)
    return path


def to_shared_strings(path: Path) -> Path:
    """Rewrite openpyxl's inline strings as a shared-strings table, as Excel itself saves."""
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name).decode() for name in z.namelist()}
    table: list[str] = []

    def shared(m: re.Match[str]) -> str:
        table.append(m[2])
        return f'{m[1]} t="s"><v>{len(table) - 1}</v></c>'

    for name in [n for n in parts if n.startswith("xl/worksheets/")]:
        parts[name] = re.sub(
            r'(<c r="\w+"(?: s="\d+")?) t="inlineStr"><is><t(?: [^>]*)?>(.*?)</t></is></c>',
            shared,
            parts[name],
        )
    parts["xl/sharedStrings.xml"] = (
        f"<sst {NS}>"
        + "".join(f'<si><t xml:space="preserve">{t}</t></si>' for t in table)
        + "</sst>"
    )
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        "</Relationships>",
        f'<Relationship Id="rIdS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return path


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
    "1e+20",
    "2.5e-07",
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


def test_xlsx_and_html_renamed_as_xls_are_read_as_what_they_are(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "report.xls", {"S": [["a", 1]]})
    assert rows_of(path) == (
        FileInfo(format="xlsx", sheet="S", first_row=("a", "1")),
        [(1, ["a", "1"])],
    )


def test_xlsx_many_rows_read_alike_by_template_and_by_expat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(7)
    pool: list[Callable[[], object]] = [
        lambda: rnd.randint(-(10**6), 10**6),
        lambda: rnd.random() * 1000,
        lambda: rnd.choice(["x", "y & z", ""]),
        lambda: None,
        lambda: rnd.choice([True, False]),
        lambda: dt.datetime(2020, 1, 1) + dt.timedelta(minutes=rnd.randint(0, 10**6)),
        lambda: f"word{rnd.randint(0, 50)}",
        lambda: "#REF!" if rnd.random() < 0.01 else 1.5,
    ]
    data = [[rnd.choice(pool)() for _ in range(rnd.randint(1, 9))] for _ in range(3000)]
    path = to_shared_strings(make_xlsx(tmp_path / "a.xlsx", {"S": data}))
    exactly = xlsx_reader._SheetReader._exactly
    slow: list[int] = []

    def counted(self: xlsx_reader._SheetReader, xml: str, row_no: int) -> None:
        slow.append(row_no)
        exactly(self, xml, row_no)

    monkeypatch.setattr(xlsx_reader._SheetReader, "_exactly", counted)
    info, fast = rows_of(path)
    assert len(slow) < len(data) // 4  # most rows repeat a shape already learned
    # Now every row goes through expat callbacks.
    monkeypatch.setattr(xlsx_reader._SheetReader, "_learn", lambda *_: None)
    slow.clear()
    exact = list(read_rows(path, info))
    assert fast == exact
    assert len(slow) == len(data)
    assert len(fast) == sum(1 for row in data if any(v not in (None, "") for v in row))


# ---------------------------------------------------------------- XLSX built by hand

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RELNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def hand_xlsx(
    path: Path,
    sheet: str | bytes,
    *,
    strings: str | None = None,
    styles: str | None = None,
    workbook: str | None = None,
    sheet_part: str = "worksheets/sheet1.xml",
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="{sheet_part}"/>']
    files = {
        "_rels/.rels": f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": workbook
        or f'<workbook {NS} {RELNS}><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/" + sheet_part.lstrip("/").removeprefix("xl/"): sheet,
    }
    if strings is not None:
        files["xl/sharedStrings.xml"] = strings
        rels.append(
            f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        )
    if styles is not None:
        files["xl/styles.xml"] = styles
        rels.append(f'<Relationship Id="rId3" Type="{REL}/styles" Target="styles.xml"/>')
    files["xl/_rels/workbook.xml.rels"] = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(rels)
        + "</Relationships>"
    )
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def sheet_xml(rows: str, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    ns = NS.replace("xmlns=", f"xmlns:{prefix}=") if prefix else NS
    return f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}><{p}dimension ref="A1:ZZ99999"/><{p}sheetData>{rows}</{p}sheetData></{p}worksheet>'


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
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    # Declare 1000 bytes in both the local header and the central directory entry.
    struct.pack_into("<I", data, info.header_offset + 22, 1000)
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    while data[central + 46 : central + 46 + len(info.filename)] != info.filename.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, 1000)
    path.write_bytes(bytes(data))
    with pytest.raises(ReaderError, match="corrupt or truncated workbook"):
        rows_of(path)


def test_xlsx_shared_strings_over_their_cap_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_reader, "SST_TEXT_LIMIT", 10_000)
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


# ---------------------------------------------------------------- XLS


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


def test_xls_calamine_reads_what_xlrd_reads_error_cells_included(tmp_path: Path) -> None:
    """The fast path (calamine + the error-record scan) against xlrd's reading of the same sheet."""
    xlwt = need_module("xlwt")
    from actors.readers import xls_reader

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
    fast = list(xls_reader.read_xls(path, "Data"))
    with xls_reader._open(path) as book:
        slow = list(xls_reader._sheet(book, "Data")[1])
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
    fast = list(xls_reader.read_xls(tmp_path / "shifted.xls", None))
    with xls_reader._open(tmp_path / "shifted.xls") as book:
        assert fast == list(xls_reader._sheet(book, None)[1])
    assert fast == [(4, [None, None, "c4"]), (5, [None, None, None, "2"]), BadRow(9, "cell F9 holds the error #DIV/0!")]


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file (v3, 512-byte sectors) holding these streams (each padded to 4 KiB)."""
    free, end, fat_sector, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    bodies = [data.ljust(max(4096, -(-len(data) // 512) * 512), b"\0") for data in streams.values()]
    fat = [fat_sector, end]
    starts = []
    for body in bodies:
        starts.append(len(fat))
        sectors = len(body) // 512
        fat += [len(fat) + i + 1 for i in range(sectors - 1)] + [end]
    assert len(fat) <= 128
    fat += [free] * (128 - len(fat))

    def entry(
        name: str, kind: int, left: int, right: int, child: int, start: int, size: int
    ) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(raw), kind, 1, left, right, child)
            + b"\0" * 36
            + struct.pack("<IIII", start, size, 0, 0)[:8]
            + b"\0" * 4
        )

    names = list(streams)
    entries = [entry("Root Entry", 5, nostream, nostream, 1, end, 0)]
    for i, name in enumerate(names):  # sizes of 4 KiB and up keep streams out of the mini stream
        right = i + 2 if i + 1 < len(names) else nostream
        entries.append(entry(name, 2, nostream, right, nostream, starts[i], len(bodies[i])))
    directory = b"".join(entries).ljust(512, b"\0")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", free) * 108
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + b"".join(bodies)


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


# ---------------------------------------------------------------- hostile input, bounded time


def test_hostile_files_of_a_few_megabytes_finish_quickly(tmp_path: Path) -> None:
    cases = {
        "one-line.csv": b"a," * 2_500_000,
        "runaway.csv": b'x\n"' + b"y" * 5_000_000,
        "many-quotes.csv": b'"' * 5_000_000,
        "nul.csv": b"a,b\n" + b"\0" * 5_000_000,
        "cells.xlsx": hand_xlsx(
            tmp_path / "h.xlsx",
            sheet_xml('<row r="1">' + '<c r="A1"><v>1</v></c>' * 200_000 + "</row>"),
        ).read_bytes(),
    }
    for name, data in cases.items():
        path = write(tmp_path, name, data)
        start = time.monotonic()
        try:
            info = inspect_file(path)
            for _ in read_rows(path, info):
                pass
        except ReaderError:
            pass
        assert time.monotonic() - start < 3, name


BASE_SHEET = sheet_xml(
    '<row r="1" spans="1:3"><c r="A1" t="s"><v>0</v></c><c r="B1" s="1"><v>45000.5</v></c></row>'
    '<row r="2"><c r="A2" t="inlineStr"><is><t>a &amp; b</t></is></c><c r="B2"><f>1</f><v>2</v></c>'
    '<c r="C2" t="e"><v>#N/A</v></c></row><row r="3"><c r="A3" t="b"><v>1</v></c></row>'
).encode()
FUZZ_STRINGS = f"<sst {NS}><si><t>x</t></si><si><r><t>y</t></r></si></sst>"
FUZZ_STYLES = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="22"/></cellXfs></styleSheet>'
NEAR_CSV = st.text(
    alphabet=st.sampled_from(list('ab,;|\t"\n\r \x00é€\ufeff') + ["\ud7ff"]), max_size=400
)
MAGIC = st.sampled_from(
    [b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"\xff\xfe"]
)
FLIPS = st.lists(
    st.tuples(st.integers(0, len(BASE_SHEET)), st.sampled_from(b'<>/"=&;!?x0 \x00\xff')),
    min_size=1,
    max_size=6,
)


def mutated(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in flips:
        out[at % len(out)] = value
    return bytes(out)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.builds(lambda m, b: ("file", m + b), MAGIC, st.binary(max_size=600)),
        NEAR_CSV.map(lambda s: ("file", s.encode("utf-8", "surrogatepass"))),
        FLIPS.map(lambda flips: ("sheet", mutated(BASE_SHEET, flips))),  # broken XML in a sound zip
    ),
    st.sampled_from([None, "cp1252", "utf-16"]),
)
def test_any_bytes_give_rows_or_a_reader_error_and_nothing_else(
    tmp_path: Path, case: tuple[str, bytes], encoding: str | None
) -> None:
    kind, data = case
    if kind == "sheet":
        path = hand_xlsx(tmp_path / "fuzz.xlsx", data, strings=FUZZ_STRINGS, styles=FUZZ_STYLES)
    else:
        path = write(tmp_path, "fuzz.bin", data)
    start = time.monotonic()
    try:
        info = inspect_file(path, encoding=encoding)
        for item in read_rows(path, info):
            assert isinstance(item, BadRow) or all(c is None or isinstance(c, str) for c in item[1])
    except ReaderError as exc:
        assert str(exc)
    assert time.monotonic() - start < 2


TEXT = st.lists(st.sampled_from(list("ab <>&\"'\n\r_x0D") + ["_x000D_", "é"]), max_size=6).map(
    "".join
)
RAW_VALUE = {
    "n": st.one_of(
        st.integers(-(10**18), 10**18).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(
            ["", " 7 ", "1e5", "abc", "007", "-0", "60", "45000.5", "0.25", "2958465.9999999"]
        ),
    ),
    "s": st.sampled_from(["0", "1", "2", "9", "-1", "x", "", "+1"]),
    "b": st.sampled_from(["0", "1", "true", "x", ""]),
    "e": st.sampled_from(["#N/A", "#DIV/0!", ""]),
    "str": TEXT,
    "inlineStr": TEXT,
    "d": st.sampled_from(["2024-01-02", "2024-01-02T03:04:05", "12:30:00", "junk", ""]),
}
CELL_SHAPE = st.tuples(
    st.sampled_from(["A", "B", "C", "AB", None]),  # column letters, or no reference at all
    st.sampled_from(list(RAW_VALUE)),
    st.sampled_from([None, "0", "1"]),  # style 1 is a date format
    st.sampled_from(["v", "empty", "formula", "preserve", "rich"]),
)


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell_xml(shape: tuple[str | None, str, str | None, str], value: str, row: int) -> str:
    letters, typ, style, form = shape
    attrs = (
        (f' r="{letters}{row}"' if letters else "")
        + (f' s="{style}"' if style else "")
        + (f' t="{typ}"' if typ != "n" else "")
    )
    if form == "empty":
        return f"<c{attrs}/>"
    if typ == "inlineStr":
        runs = {
            "rich": f"<r><t>{xml_text(value[:2])}</t></r><r><t>{xml_text(value[2:])}</t></r>",
            "preserve": f'<t xml:space="preserve">{xml_text(value)}</t>',
        }
        return f"<c{attrs}><is>{runs.get(form, f'<t>{xml_text(value)}</t>')}</is></c>"
    formula = "<f>A1&amp;1</f>" if form == "formula" else ""
    return f"<c{attrs}>{formula}<v>{xml_text(value)}</v></c>"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_templates_and_expat_agree_on_any_sheet(tmp_path: Path, data: st.DataObject) -> None:
    shapes = data.draw(st.lists(st.lists(CELL_SHAPE, max_size=5), min_size=1, max_size=3))
    rows = []
    for row in range(1, data.draw(st.integers(1, 40)) + 1):
        shape = data.draw(st.sampled_from(shapes))
        cells = "".join(cell_xml(c, data.draw(RAW_VALUE[c[1]]), row) for c in shape)
        rows.append(
            f'<row r="{row}">{cells}</row>' if data.draw(st.booleans()) else f"<row>{cells}</row>"
        )
    strings = f'<sst {NS}><si><t>zero</t></si><si><t xml:space="preserve"> one </t></si><si><t></t></si></sst>'
    styles = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>'
    path = hand_xlsx(tmp_path / "t.xlsx", sheet_xml("".join(rows)), strings=strings, styles=styles)

    def outcome() -> object:
        try:
            return list(read_rows(path, FileInfo(format="xlsx", sheet="S")))
        except ReaderError as exc:
            return str(exc)

    fast = outcome()
    learn = xlsx_reader._SheetReader._learn
    xlsx_reader._SheetReader._learn = lambda *_: None  # type: ignore[method-assign]
    try:
        exact = outcome()
    finally:
        xlsx_reader._SheetReader._learn = learn  # type: ignore[method-assign]
    assert fast == exact


SHARED_ENTRY = st.one_of(
    TEXT.map(lambda v: f"<si><t>{xml_text(v)}</t></si>"),
    TEXT.map(lambda v: f'<si><t xml:space="preserve">{xml_text(v)}</t></si>'),
    st.tuples(TEXT, TEXT).map(
        lambda v: f"<si><r><t>{xml_text(v[0])}</t></r><r><t>{xml_text(v[1])}</t></r></si>"
    ),
    TEXT.map(lambda v: f'<si><t>{xml_text(v)}</t><rPh sb="0" eb="1"><t>ふ</t></rPh></si>'),
    st.sampled_from(["<si/>", "<si><t/></si>", "<si>\n <t>x</t>\n</si>"]),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(SHARED_ENTRY, min_size=1, max_size=30))
def test_shared_strings_read_alike_by_split_and_by_expat(
    tmp_path: Path, entries: list[str]
) -> None:
    rows = "".join(
        f'<row r="{i}"><c r="A{i}" t="s"><v>{i - 1}</v></c></row>'
        for i in range(1, len(entries) + 1)
    )
    path = hand_xlsx(
        tmp_path / "s.xlsx", sheet_xml(rows), strings=f"<sst {NS}>{''.join(entries)}</sst>"
    )
    info = FileInfo(format="xlsx", sheet="S")
    fast = list(read_rows(path, info))
    plain = xlsx_reader._plain_entries
    xlsx_reader._plain_entries = lambda xml: None  # every entry through expat
    try:
        exact = list(read_rows(path, info))
    finally:
        xlsx_reader._plain_entries = plain
    assert fast == exact
