"""XLS (BIFF, Excel 97-2003), with cells as text by the same rules as XLSX.

BIFF8 sheets (every Excel 97-2003 file) are streamed from their records (xls_stream.py): memory holds
the shared strings and a run of rows, never the sheet, in the API's first-row check as in the parse.
Older BIFF versions, and the reference reading the streaming one is tested against (fast=False), are
read by xlrd, which loads the sheet whole. xlrd reads the workbook's globals in both.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Generator, Iterator
from typing import Any

import xlrd

from actors.readers.cells import float_text
from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row, first_row, named_sheet
from actors.readers.xls_cells import Quiet, cell_error, date_cell, finished
from actors.readers.xls_stream import stream_rows
from actors.readers.xls_strings import SharedStrings, open_globals

_ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")  # an OLE2 stream name, as stored


def inspect_xls(
    path: str | os.PathLike[str], sheet: str | None
) -> tuple[str, tuple[str | None, ...]]:
    """Resolve the sheet and read its first non-blank row."""
    name, rows = _read(path, sheet)
    return name, first_row(name, rows)


def open_xls(
    path: str | os.PathLike[str], sheet: str | None
) -> tuple[str, tuple[str | None, ...], Generator[Row | BadRow, None, None]]:
    """inspect_xls and read_xls from one load of the sheet: (name, first row, every row)."""
    name, rows = _read(path, sheet)
    try:
        head = next(rows, None)
        first = first_row(name, () if head is None else (head,))
    except BaseException:
        _close(rows)
        raise
    return name, first, _after(head, rows)


def _after(
    head: Row | BadRow | None, rows: Iterator[Row | BadRow]
) -> Generator[Row | BadRow, None, None]:
    """The row already taken, then the rest (closing this closes the reader too)."""
    if head is not None:
        yield head
    yield from rows


def _close(rows: Iterator[Row | BadRow]) -> None:
    """Close a reader's generator (and what it holds open) now, not when it is collected."""
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def read_xls(
    path: str | os.PathLike[str], sheet: str | None, *, fast: bool = True
) -> Iterator[Row | BadRow]:
    """Stream the sheet's non-blank rows as (row number, cells); BadRow for rows with error cells.

    fast=False reads the sheet by xlrd alone: the reference the streaming reading is tested against.
    """
    return _read(path, sheet, fast)[1]


def _read(
    path: str | os.PathLike[str], sheet: str | None, fast: bool = True
) -> tuple[str, Iterator[Row | BadRow]]:
    """(sheet name, rows): streamed from the sheet's records for BIFF8, else loaded by xlrd."""
    book = _open(path, streamed=fast)  # the globals only: shared strings, formats, sheet offsets
    try:
        name = _sheet_name(book.book, sheet)
        if isinstance(book.book._sharedstrings, SharedStrings):
            index = list(book.book.sheet_names()).index(name)
            return name, _closing(book, stream_rows(book.book, index, name))
        name, rows = _sheet(book.book, name)
        return name, _closing(book, rows)
    except BaseException:
        book.__exit__()
        raise


def _closing(book: _open, rows: Iterator[Row | BadRow]) -> Iterator[Row | BadRow]:
    """The rows, then the workbook closed; a damaged sheet's failure of any kind as a ReaderError."""
    with book:
        try:
            yield from rows
        except ReaderError:
            raise
        except (
            Exception
        ) as exc:  # xlrd is pure Python and the records are the file's: anything can break
            raise ReaderError(f"corrupt or truncated XLS workbook: {exc!r}") from exc


def _is_encrypted_ooxml(path: str | os.PathLike[str]) -> bool:
    """True for an OLE2 file holding an EncryptedPackage stream (an XLSX saved with a password)."""
    with open(path, "rb") as raw:
        if os.fstat(raw.fileno()).st_size == 0:
            return False
        with mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(_ENCRYPTED_OOXML) >= 0


class _open:  # noqa: N801 - used like open()
    """xlrd's workbook as a context manager, its failures translated into ReaderError."""

    def __init__(self, path: str | os.PathLike[str], *, streamed: bool = False) -> None:
        """streamed: a BIFF8 workbook's shared strings are decoded as cells ask (xls_strings.py)."""
        try:
            self.book: Any = open_globals(path) if streamed else None
            if self.book is None:  # not asked, or not BIFF8: xlrd's own book, read whole
                self.book = xlrd.open_workbook(
                    os.fspath(path), on_demand=True, formatting_info=False, logfile=Quiet()
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
    """(name, rows) of the named sheet, else of the first, read by xlrd."""
    name = _sheet_name(book, sheet)
    try:
        data = book.sheet_by_name(name)
    except Exception as exc:
        raise ReaderError(f"corrupt or truncated XLS workbook: sheet {name!r}: {exc!r}") from exc
    return name, _rows(data, book.datemode)


def _sheet_name(book: Any, sheet: str | None) -> str:
    """The named sheet of an xlrd book, or its first."""
    return _pick(list(book.sheet_names()), sheet)


def _pick(names: list[str], sheet: str | None) -> str:
    """The named sheet (exactly, else ignoring case and surrounding spaces), or the first."""
    if not names:
        raise ReaderError("workbook has no sheets")
    return names[0] if sheet is None else names[named_sheet(names, sheet)]


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
                text = date_cell(value, datemode)
            elif typ == xlrd.XL_CELL_BOOLEAN:
                text = "true" if value else "false"
            elif typ == xlrd.XL_CELL_ERROR and bad is None:
                bad = cell_error(rx, cx, value)
            cells.append(text)
        yield from finished(rx, cells, bad)
