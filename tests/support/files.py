"""Files the tests import, made by the libraries people make them with: CSV rows, XLSX by openpyxl, XLS by xlwt."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl

from actors.readers import BadRow, FileInfo, inspect_file, read_rows
from tests.support.handmade import NS, REL

Rows = list[tuple[int, list[str | None]] | BadRow]

CONTACTS_SCHEMA = {
    "fields": [
        {"name": "email", "type": "email", "required": True},
        {"name": "name", "type": "string"},
        {"name": "age", "type": "integer"},
        {"name": "balance", "type": "decimal"},
        {"name": "active", "type": "boolean"},
        {"name": "joined", "type": "date"},
    ],
    "key": ["email"],
}


def contacts(n: int, start: int = 0) -> list[list[Any]]:
    """n contact rows with a header."""
    rows: list[list[Any]] = [["email", "name", "age", "balance", "active", "joined"]]
    for i in range(start, start + n):
        rows.append([f"user{i}@example.com", f"User {i}", 20 + i % 50, f"{i}.50", "true" if i % 2 else "false", "2024-01-15"])
    return rows


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    """A file of these bytes (or this text, encoded)."""
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def rows_of(path: Path, **kw: object) -> tuple[FileInfo, Rows]:
    """What the readers make of a file: inspect_file's verdict (with these options) and every row."""
    info = inspect_file(path, **kw)  # type: ignore[arg-type]
    return info, list(read_rows(path, info))


def write_csv(path: Path, rows: list[list[Any]], *, sep: str = ",", bom: bool = False, newline: str = "\r\n") -> Path:
    """Write rows as CSV (the tests make their own files)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=newline)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode())
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    """Rows as the one sheet of an XLSX workbook (openpyxl's default sheet)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]], *, write_only: bool = False) -> Path:
    """An XLSX workbook with these sheets, in order, by openpyxl (its inline strings)."""
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
        f"<sst {NS}>" + "".join(f'<si><t xml:space="preserve">{t}</t></si>' for t in table) + "</sst>"
    )
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        "</Relationships>",
        f'<Relationship Id="rIdS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return path


def write_xls(path: Path, rows: list[list[Any]]) -> Path:
    """Rows as the sheet "Sheet1" of an XLS (BIFF8) workbook, by xlwt."""
    import xlwt  # only the tests that make XLS files need it

    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            ws.write(r, c, value)
    wb.save(str(path))
    return path
