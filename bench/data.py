"""Seeded data: the same 10-column rows written as CSV, XLSX (written by hand) and XLS (xlwt).

Every file of a given seed starts with the same rows, so a 100k-row CSV is the first 100k rows
of the 1M-row one. Generated files live under a temp dir the caller owns; nothing is committed.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

SEED = 20240611
HEADER = ("id", "email", "name", "amount", "signup", "active", "category", "note", "quantity", "country")
TYPES = ("integer", "email", "string", "decimal", "date", "boolean", "string", "string", "integer", "string")

_FIRST = ["ann", "bob", "carla", "dmitri", "eve", "farid", "grace", "hiro", "ines", "jamal", "kim", "lars", "maria", "nils", "olga", "pedro", "quinn", "rosa", "sven", "tara", "ugo", "vera", "wei", "xena", "yusuf", "zoe", "adele", "bruno", "chen", "dana", "emil", "fatima", "gus", "hana", "ivan", "jo", "kofi", "lena", "marco", "nora", "oscar", "priya", "ravi", "sara", "tomas", "uma", "victor", "wanda", "yara", "zack"]
_LAST = ["smith", "jones", "garcia", "muller", "rossi", "novak", "kowalski", "silva", "tanaka", "kim", "nguyen", "ivanova", "dubois", "jensen", "larsen", "moreau", "fischer", "weber", "schmidt", "hansen", "berg", "costa", "ferreira", "martin", "lopez", "gonzalez", "perez", "sato", "suzuki", "wang", "li", "zhang", "chen", "singh", "patel", "khan", "ali", "haddad", "cohen", "levi", "murphy", "kelly", "walsh", "byrne", "okafor", "mensah", "diallo"]
_FIRST_T = [n.title() for n in _FIRST]
_LAST_T = [n.title() for n in _LAST]
_DOMAINS = ("example.com", "example.org", "example.net", "mail.test", "corp.test", "shop.test")
_CATEGORIES = ("bronze", "silver", "gold", "platinum", "trial", "partner", "staff", "other")
_COUNTRIES = ["US", "GB", "DE", "FR", "IT", "ES", "PT", "NL", "BE", "SE", "NO", "DK", "FI", "PL", "CZ", "AT", "CH", "IE", "JP", "KR", "CN", "IN", "BR", "MX", "CA", "AU", "NZ", "ZA", "NG", "EG"]
_WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "order", "shipped", "late", "again", "customer", "asked", "about", "refund", "invoice", "payment", "pending", "approved", "denied", "review", "account", "upgraded", "downgraded", "renewal", "contract", "signed", "call", "back", "next", "week", "prefers", "email", "phone", "support", "ticket", "closed", "opened", "escalated", "urgent", "low", "priority", "high", "value", "lead", "warm", "cold", "follow", "up", "meeting", "notes", "budget", "q1", "q2", "q3", "q4", "region", "north", "south", "east", "west", "product", "demo", "trial", "extended", "discount", "applied", "coupon", "code", "newsletter", "opt", "in", "out"]
_EPOCH = date(2015, 1, 1)
_DAYS = 3650
_DATES = [(_EPOCH + timedelta(days=d)).isoformat() for d in range(_DAYS)]
_EXCEL_BASE = date(1899, 12, 30)
_SERIALS = [(_EPOCH + timedelta(days=d) - _EXCEL_BASE).days for d in range(_DAYS)]


def schema() -> dict[str, Any]:
    """The dataset schema for the generated rows (key: id)."""
    return {"fields": [{"name": n, "type": t} for n, t in zip(HEADER, TYPES, strict=True)], "key": ["id"]}


def write_schema(path: Path) -> Path:
    """Write the schema JSON for `importer datasets create`."""
    path.write_text(json.dumps(schema()))
    return path


def rows(count: int, seed: int = SEED) -> Iterator[tuple[int, str, str, int, int, bool, str, str, int, str]]:
    """Rows as (id, email, name, cents, day index, active, category, note, quantity, country)."""
    rng = random.Random(seed)
    rand = rng.random  # one C call per draw: int(rand() * n) is much cheaper than choice()
    first_names, last_names, domains, categories, countries, words = _FIRST, _LAST, _DOMAINS, _CATEGORIES, _COUNTRIES, _WORDS
    nf, nl, nd, nc, nco, nw = len(_FIRST), len(_LAST), len(_DOMAINS), len(_CATEGORIES), len(_COUNTRIES), len(_WORDS)
    for i in range(1, count + 1):
        fi = int(rand() * nf)
        li = int(rand() * nl)
        first = first_names[fi]
        last = last_names[li]
        note = " ".join([words[int(rand() * nw)] for _ in range(3 + int(rand() * 10))])
        r = rand()
        if r < 0.10:
            note = note.replace(" ", ", ", 1)  # needs quoting in CSV
        elif r < 0.12:
            note = f'said "{note}"'  # doubled quotes in CSV
        elif r < 0.122:
            note = note.replace(" ", "\n", 1)  # a record over two lines
        yield (
            i,
            f"{first}.{last}{i}@{domains[int(rand() * nd)]}",
            f"{_FIRST_T[fi]} {_LAST_T[li]}",
            int(rand() * 10_000_000),
            int(rand() * _DAYS),
            rand() < 0.5,
            categories[int(rand() * nc)],
            note,
            int(rand() * 1000),
            countries[int(rand() * nco)],
        )


def _cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def write_csv(path: Path, count: int, seed: int = SEED, *, head: tuple[Path, int] | None = None) -> Path:
    """A UTF-8 CSV with a header row and `count` data rows (and, in the same pass, a file of its first rows)."""
    dates = _DATES
    flags = ("false", "true")
    records = (
        (i, email, name, f"{c // 100}.{c % 100:02d}", dates[d], flags[a], cat, note, q, cc)
        for i, email, name, c, d, a, cat, note, q, cc in rows(count, seed)
    )
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        if head is not None and 0 < head[1] < count:
            with open(head[0], "w", newline="", encoding="utf-8") as g:
                w2 = csv.writer(g, lineterminator="\n")
                w2.writerow(HEADER)
                for record in itertools.islice(records, head[1]):
                    w.writerow(record)
                    w2.writerow(record)
        w.writerows(records)
    return path


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (  # xf 0: general; xf 1: built-in date format 14 (what Excel writes for a typed date)
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_COLS = "ABCDEFGHIJ"


def write_xlsx(path: Path, count: int, seed: int = SEED) -> Path:
    """An XLSX as Excel writes one: shared strings, typed numbers, dates as serials with a date style."""
    strings: dict[str, int] = {}

    def sst(text: str) -> int:
        index = strings.get(text)
        if index is None:
            index = strings[text] = len(strings)
        return index

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                + f'<dimension ref="A1:J{count + 1}"/><sheetData>'.encode()
            )
            head = "".join(f'<c r="{c}1" t="s"><v>{sst(h)}</v></c>' for c, h in zip(_COLS, HEADER, strict=True))
            buf = [f'<row r="1">{head}</row>']
            serials = _SERIALS
            for i, email, name, c, d, a, cat, note, q, cc in rows(count, seed):
                r = i + 1
                buf.append(
                    f'<row r="{r}"><c r="A{r}"><v>{i}</v></c><c r="B{r}" t="s"><v>{sst(email)}</v></c>'
                    f'<c r="C{r}" t="s"><v>{sst(name)}</v></c><c r="D{r}"><v>{_cents(c)}</v></c>'
                    f'<c r="E{r}" s="1"><v>{serials[d]}</v></c><c r="F{r}" t="b"><v>{int(a)}</v></c>'
                    f'<c r="G{r}" t="s"><v>{sst(cat)}</v></c><c r="H{r}" t="s"><v>{sst(note)}</v></c>'
                    f'<c r="I{r}"><v>{q}</v></c><c r="J{r}" t="s"><v>{sst(cc)}</v></c></row>'
                )
                if len(buf) >= 2000:
                    out.write("".join(buf).encode())
                    buf.clear()
            buf.append("</sheetData></worksheet>")
            out.write("".join(buf).encode())
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                + f'count="{len(strings)}" uniqueCount="{len(strings)}">'.encode()
            )
            chunk: list[str] = []
            for text in strings:  # insertion order is index order
                chunk.append(f"<si><t>{escape(text)}</t></si>")
                if len(chunk) >= 5000:
                    out.write("".join(chunk).encode())
                    chunk.clear()
            chunk.append("</sst>")
            out.write("".join(chunk).encode())
    return path


def write_xls(path: Path, count: int, seed: int = SEED) -> Path:
    """An XLS (BIFF8) through xlwt: numbers, text, booleans and dates with a date format."""
    if count > 65_535:
        raise ValueError("an XLS sheet holds at most 65,536 rows")
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1", cell_overwrite_ok=False)
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for col, name in enumerate(HEADER):
        sheet.write(0, col, name)
    serials = _SERIALS
    for i, email, name, c, d, a, cat, note, q, cc in rows(count, seed):
        row = sheet.row(i)
        row.set_cell_number(0, i)
        row.set_cell_text(1, email)
        row.set_cell_text(2, name)
        row.set_cell_number(3, c / 100)
        row.set_cell_number(4, serials[d], date_style)
        row.set_cell_boolean(5, a)
        row.set_cell_text(6, cat)
        row.set_cell_text(7, note)
        row.set_cell_number(8, q)
        row.set_cell_text(9, cc)
        if i % 1000 == 0:
            sheet.flush_row_data()
    book.save(str(path))
    return path
