"""The error report as an XLSX workbook: openpyxl's write-only mode, rows spooled to a temp file.

openpyxl is imported only here, only when a workbook is asked for, and only to write: uploads are
never parsed by it (the readers use expat with DTDs refused). Cells come back typed: a cell the
reader gave as a canonical number or ISO date is written as a number or date, everything else as
text (so `00123` stays text, and a leading `=` is text, never a formula).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.reports import SourceRow, error_table
from events.projections import FailureSource, ImportView

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?")
# Characters XML 1.0 cannot hold (openpyxl refuses them); a cell read from a workbook rarely has any.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
READ_BYTES = 1 << 16


def typed(text: str | None) -> Any:
    """A cell's value as the reader saw it: numbers and dates in their canonical text become
    numbers and dates again; anything else stays text."""
    if not text:
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        shown = repr(value)
        if (shown[:-2] if shown.endswith(".0") else shown) == text:
            return value
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _DATETIME.fullmatch(text):
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    return _ILLEGAL.sub("", text)


def write_error_workbook(view: ImportView, rows: Iterator[SourceRow], failures: FailureSource, target: Path) -> None:
    """Write the error report to `target`: header in bold, the error column highlighted."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill

    book = Workbook(write_only=True)
    sheet = book.create_sheet("errors")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    alert = PatternFill("solid", fgColor="FDE2E1")
    red = Font(color="9B1C1C")

    def text(value: str | None, **style: Any) -> Any:
        cell = WriteOnlyCell(sheet, value=_ILLEGAL.sub("", value) if value else None)
        if value:
            cell.data_type = "s"  # never a formula, whatever the text starts with
        for name, v in style.items():
            setattr(cell, name, v)
        return cell

    table = error_table(view, rows, failures)
    header = next(table)
    sheet.append([text(c, font=bold) for c in header[:-1]] + [text(header[-1], font=bold, fill=alert)])
    for row in table:
        *cells, line, error = row
        values = [typed(c) for c in cells]
        out: list[Any] = [text(v) if isinstance(v, str) else v for v in values]
        out.append(int(line) if line else None)
        out.append(text(error, font=red, fill=alert))
        sheet.append(out)
    book.save(target)


def stream_file(path: Path) -> Iterator[bytes]:
    """A file's bytes in pieces; the file is removed once read (or abandoned)."""
    try:
        with path.open("rb") as fh:
            while piece := fh.read(READ_BYTES):
                yield piece
    finally:
        path.unlink(missing_ok=True)
