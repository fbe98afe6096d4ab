"""XLS (BIFF, Excel 97-2003) through xlrd, with cells as text by the same rules as XLSX."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

import xlrd

from actors.readers.errors import BadRow, ReaderError
from actors.readers.xlsx_reader import datetime_text, float_text

Row = tuple[int, list[str | None]]
_ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")  # an OLE2 stream name, as stored


class _Quiet:
    """A log sink: xlrd writes warnings about odd-but-readable files to stdout otherwise."""

    def write(self, _: str) -> int:
        return 0


def inspect_xls(
    path: str | os.PathLike[str], sheet: str | None
) -> tuple[str, tuple[str | None, ...]]:
    """Resolve the sheet and read its first non-blank row."""
    with _open(path) as book:
        name, rows = _sheet(book, sheet)
        for item in rows:
            if isinstance(item, BadRow):
                raise ReaderError(
                    f"sheet {name!r}, row {item.line}: cannot read the first row: {item.message}"
                )
            return name, tuple(item[1])
    raise ReaderError(f"sheet {name!r} has no rows (it is blank)")


def read_xls(path: str | os.PathLike[str], sheet: str | None) -> Iterator[Row | BadRow]:
    """Stream the sheet's non-blank rows as (row number, cells); BadRow for rows with error cells."""
    with _open(path) as book:
        yield from _sheet(book, sheet)[1]


def _is_encrypted_ooxml(path: str | os.PathLike[str]) -> bool:
    """True for an OLE2 file holding an EncryptedPackage stream (an XLSX saved with a password)."""
    with open(path, "rb") as raw:
        if os.fstat(raw.fileno()).st_size == 0:
            return False
        with mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(_ENCRYPTED_OOXML) >= 0


class _open:  # noqa: N801 - used like open()
    """xlrd's workbook as a context manager, its failures translated into ReaderError."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.book = xlrd.open_workbook(
                os.fspath(path), on_demand=True, formatting_info=False, logfile=_Quiet()
            )
        except xlrd.biffh.XLRDError as exc:
            # A password-protected XLSX is an OLE2 file too, holding no workbook stream at all.
            if "encrypted" in str(exc).lower() or _is_encrypted_ooxml(path):
                raise ReaderError("workbook is password-protected") from exc
            raise ReaderError(f"corrupt or unsupported XLS workbook: {exc}") from exc
        except Exception as exc:  # xlrd is pure Python: a damaged file can fail anywhere inside it
            raise ReaderError(f"corrupt or truncated XLS workbook: {exc!r}") from exc

    def __enter__(self) -> Any:
        return self.book

    def __exit__(self, *exc: object) -> None:
        self.book.release_resources()


def _sheet(book: Any, sheet: str | None) -> tuple[str, Iterator[Row | BadRow]]:
    """(name, rows) of the named sheet, else of the first."""
    names: list[str] = book.sheet_names()
    if not names:
        raise ReaderError("workbook has no sheets")
    if sheet is None:
        name = names[0]
    else:
        folded = sheet.strip().casefold()
        matches = [n for n in names if n == sheet] or [
            n for n in names if n.strip().casefold() == folded
        ]
        if not matches:
            listed = ", ".join(repr(n) for n in names)
            raise ReaderError(f"workbook has no sheet named {sheet!r}; its sheets are {listed}")
        name = matches[0]
    try:
        data = book.sheet_by_name(name)
    except Exception as exc:
        raise ReaderError(f"corrupt or truncated XLS workbook: sheet {name!r}: {exc!r}") from exc
    return name, _rows(data, book.datemode)


def _rows(sheet: Any, datemode: int) -> Iterator[Row | BadRow]:
    """The sheet's rows, trailing empty cells trimmed, blank rows skipped."""
    for rx in range(sheet.nrows):
        types = sheet.row_types(rx)
        values = sheet.row_values(rx)
        cells: list[str | None] = []
        bad: str | None = None
        for cx, (typ, value) in enumerate(zip(types, values, strict=True)):
            text: str | None = None
            if typ == xlrd.XL_CELL_TEXT:
                text = value or None
            elif typ == xlrd.XL_CELL_NUMBER:
                text = float_text(value)
            elif typ == xlrd.XL_CELL_DATE:
                text = _date(value, datemode)
            elif typ == xlrd.XL_CELL_BOOLEAN:
                text = "true" if value else "false"
            elif typ == xlrd.XL_CELL_ERROR and bad is None:
                error = xlrd.error_text_from_code.get(value, f"#ERR{value}")
                bad = f"cell {xlrd.formula.cellname(rx, cx)} holds the error {error}"
            cells.append(text)
        while cells and cells[-1] is None:
            cells.pop()
        if bad is not None:
            yield BadRow(rx + 1, bad)
        elif cells:
            yield rx + 1, cells


def _date(value: float, datemode: int) -> str:
    """A date cell as ISO 8601; a serial below 1 is a time of day; out of range stays a number."""
    try:
        moment = xlrd.xldate_as_datetime(value, datemode)
    except (ValueError, OverflowError, xlrd.xldate.XLDateError):
        return float_text(value)
    if 0 <= value < 1:
        return str(moment.time().isoformat())
    return datetime_text(moment)
