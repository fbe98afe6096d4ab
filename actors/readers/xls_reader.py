"""XLS (BIFF, Excel 97-2003), with cells as text by the same rules as XLSX.

Cell values come from python-calamine (Rust; about 6x xlrd's rate here), converted to text a block
of rows at a time, column by column, in C loops where a column holds one kind of value. calamine's
Python binding turns error cells (#DIV/0!, #N/A, ...) into empty strings, so once a row shows an
empty cell the sheet's own records are scanned for error results (xls_records.py), and those cells
make BadRows as before; a sheet without empty cells is never scanned. If calamine cannot read a
file, or its sheets cannot be matched to their records, xlrd reads it instead, with its precise
error messages.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any

import python_calamine
import xlrd

from actors.readers.cells import (
    EPOCH_1900,
    EPOCH_1904,
    datetime_text,
    datetime_texts,
    float_text,
    float_texts,
)
from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row, first_row, named_sheet
from actors.readers.xls_records import Quiet, error_cells, read_globals

_ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")  # an OLE2 stream name, as stored
_BLOCK = 1024  # rows converted together, a column at a time
_BOOL_TEXT = ("false", "true")


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

    fast=False reads the sheet by xlrd alone: the reference reading calamine's is tested against.
    """
    return _read(path, sheet, fast)[1]


def _read(
    path: str | os.PathLike[str], sheet: str | None, fast: bool = True
) -> tuple[str, Iterator[Row | BadRow]]:
    """(sheet name, rows): calamine's values when it and the globals' scan can read the file, else xlrd's."""
    by_calamine = _calamine(path, sheet) if fast else None
    if by_calamine is not None:
        return by_calamine
    book = _open(path)  # calamine refused the file (or was not asked): xlrd reads it
    try:
        name, rows = _sheet(book.book, sheet)
        return name, _closing(book, rows)
    except BaseException:
        book.__exit__()
        raise


def _closing(book: _open, rows: Iterator[Row | BadRow]) -> Iterator[Row | BadRow]:
    with book:
        yield from rows


def _calamine(path: str | os.PathLike[str], sheet: str | None) -> tuple[str, Iterator[Row | BadRow]] | None:
    """The sheet read by calamine, or None when calamine (or the globals' scan) cannot read the file."""
    found = read_globals(path)  # sheet offsets and date mode: a few records at the stream's start
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(os.fspath(path))
        names: list[str] = list(workbook.sheet_names)
    except Exception:  # a Rust-side refusal of any kind: xlrd decides and words it
        return None
    try:
        if found is None or len(found.offsets) != len(names) or not names:
            return None  # sheets we cannot match to their records: let xlrd read it all
        name = _pick(names, sheet)
        data = workbook.get_sheet_by_name(name)
        # iter_rows converts row by row (the whole sheet as Python objects would be ~5x the file);
        # its rows count from the sheet's first row, its columns from the first used column.
        first_col = data.start[1] if data.start else 0
        values: Iterator[list[Any]] = iter(data.iter_rows())
    except ReaderError:
        raise
    except Exception:
        return None
    finally:
        workbook.close()  # the other sheets and calamine's copy of them; `data` keeps its own cells
    index, offsets = names.index(name), found.offsets
    base = EPOCH_1904 if found.datemode else EPOCH_1900
    return name, _calamine_rows(values, first_col, lambda: error_cells(path, offsets, index), base)


def _calamine_rows(
    values: Iterator[list[Any]],
    first_col: int,
    scan: Callable[[], dict[int, dict[int, int]]],
    base: datetime,
) -> Iterator[Row | BadRow]:
    """Rows as text, trailing empty cells trimmed, blank rows skipped, rows with error cells bad.

    An error cell shows as empty, so the records are scanned (once) when the first row with an
    empty cell comes; the first block is one row, so that reading the header alone stays cheap.
    """
    pad: list[str | None] = [None] * first_col
    errors: dict[int, dict[int, int]] | None = None
    rx = 0
    block = list(islice(values, 1))
    while block:
        for cells in _block_text(block, base):
            if None in cells and errors is None:
                errors = scan()
            if pad:
                cells = [*pad, *cells]
            bad = _row_error(rx, cells, errors[rx]) if errors and rx in errors else None
            if bad is None and cells and cells[-1] is not None:
                yield rx + 1, cells  # the common row: nothing to trim
            else:
                yield from _finished(rx, cells, bad)
            rx += 1
        block = list(islice(values, _BLOCK))
    for extra in range(rx, max(errors or (), default=-1) + 1):  # error cells past calamine's last row
        bad = _row_error(extra, pad, errors[extra]) if errors and extra in errors else None
        yield from _finished(extra, list(pad), bad)


def _row_error(rx: int, cells: list[str | None], errors: dict[int, int]) -> str | None:
    """The BadRow message for the row's first error cell that calamine shows empty, if any."""
    for cx, code in sorted(errors.items()):
        if cx >= len(cells) or cells[cx] is None:
            return _cell_error(rx, cx, code)
    return None


def _block_text(block: list[list[Any]], base: datetime) -> list[list[str | None]]:
    """A block of calamine rows as text: column by column when the rows are alike in width."""
    width = len(block[0])
    if any(len(raw) != width for raw in block):
        return [[_text(v, base) for v in raw] for raw in block]
    columns = [_column_text(column, base) for column in zip(*block, strict=True)]
    return list(map(list, zip(*columns, strict=True))) if columns else [[] for _ in block]


def _column_text(column: Sequence[Any], base: datetime) -> Sequence[str | None]:
    """One column of a block as _text gives it, in C loops when every value is of one kind."""
    kinds = set(map(type, column))
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is str:
        return [v or None for v in column] if "" in column else column
    if kind is float:
        return float_texts(column)
    if kind is int and max(map(abs, column)) < 2**53:
        return list(map(str, column))
    if kind is bool:
        return list(map(_BOOL_TEXT.__getitem__, column))
    if kind is date:
        return list(map(date.isoformat, column))
    if kind is datetime:
        return datetime_texts(column)
    return [_text(v, base) for v in column]


def _cell_error(rx: int, cx: int, code: int) -> str:
    """The BadRow message for an error cell (0-based row and column)."""
    error = xlrd.error_text_from_code.get(code, f"#ERR{code}")
    return f"cell {xlrd.formula.cellname(rx, cx)} holds the error {error}"


def _finished(rx: int, cells: list[str | None], bad: str | None) -> Iterator[Row | BadRow]:
    """A read row as the readers give it: its BadRow, or its cells without trailing empties, or
    nothing for a blank row. Rows are numbered from 1."""
    while cells and cells[-1] is None:
        cells.pop()
    if bad is not None:
        yield BadRow(rx + 1, bad)
    elif cells:
        yield rx + 1, cells


def _text(value: Any, base: datetime) -> str | None:
    """A calamine value as text, by the rules xlrd's path applies (see _rows)."""
    kind = value.__class__
    if kind is str:
        return value or None
    if kind is float:
        return float_text(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value) if abs(value) < 2**53 else float_text(float(value))
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # a duration-formatted serial: the moment xlrd would give
        return datetime_text(base + value)
    if isinstance(value, str):
        return value or None
    return None if value is None else str(value)


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
                text = _date(value, datemode)
            elif typ == xlrd.XL_CELL_BOOLEAN:
                text = "true" if value else "false"
            elif typ == xlrd.XL_CELL_ERROR and bad is None:
                bad = _cell_error(rx, cx, value)
            cells.append(text)
        yield from _finished(rx, cells, bad)


def _date(value: float, datemode: int) -> str:
    """A date cell as ISO 8601; a serial below 1 is a time of day; out of range stays a number."""
    try:
        moment = xlrd.xldate_as_datetime(value, datemode)
    except (ValueError, OverflowError, xlrd.xldate.XLDateError):
        return float_text(value)
    if 0 <= value < 1:
        return str(moment.time().isoformat())
    return datetime_text(moment)
