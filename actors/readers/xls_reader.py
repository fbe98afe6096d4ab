"""XLS (BIFF, Excel 97-2003), with cells as text by the same rules as XLSX.

Cell values come from python-calamine (Rust; about 6x xlrd's rate here). calamine's Python
binding turns error cells (#DIV/0!, #N/A, ...) into empty strings, so the sheet's BOOLERR and
FORMULA records are scanned for error results (two C-speed regex passes over the sheet's own
records, found through xlrd's compound-document reader and the globals' BOUNDSHEET records), and
those cells make BadRows as before. If calamine cannot read a file, or its sheets cannot be matched
to their records, xlrd reads it instead, with its precise error messages.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import python_calamine
import xlrd
from xlrd import compdoc

from actors.readers.cells import EPOCH_1900, EPOCH_1904, datetime_text, float_text
from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row, first_row, named_sheet

_ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")  # an OLE2 stream name, as stored


class _Quiet:
    """A log sink: xlrd writes warnings about odd-but-readable files to stdout otherwise."""

    def write(self, _: str) -> int:
        return 0


def inspect_xls(
    path: str | os.PathLike[str], sheet: str | None
) -> tuple[str, tuple[str | None, ...]]:
    """Resolve the sheet and read its first non-blank row."""
    name, rows = _read(path, sheet)
    return name, first_row(name, rows)


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
    """(sheet name, rows): calamine's values when it and the layout scan can read the file, else xlrd's."""
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


# BIFF8 cell records holding an error: BOOLERR (0x0205, 8 bytes, last byte 1 = error) and FORMULA
# (0x0006) whose cached result is an error (byte 0 = 2, bytes 6-7 = 0xFFFF). Groups: row, col, code.
_BOOLERR = re.compile(rb"\x05\x02\x08\x00(..)(..)..(.)\x01", re.DOTALL)
_FORMULA_ERROR = re.compile(rb"\x06\x00..(..)(..)..\x02.(.)...\xff\xff", re.DOTALL)
_BOUNDSHEET, _DATEMODE, _EOF = 0x0085, 0x0022, 0x000A


class _Layout(NamedTuple):
    """What calamine does not tell: where each sheet's records start, and the date system."""

    stream: bytes
    offsets: list[int]
    datemode: int


def _layout(path: str | os.PathLike[str]) -> _Layout | None:
    """The workbook stream and its globals' sheet offsets (None when it cannot be found)."""
    try:
        data = Path(path).read_bytes()
        doc = compdoc.CompDoc(data, logfile=_Quiet())
        for stream_name in ("Workbook", "Book"):  # BIFF8, then BIFF5
            mem, base, size = doc.locate_named_stream(stream_name)
            if mem is not None:
                break
        else:
            return None
        stream = bytes(mem[base : base + size])
    except Exception:  # a damaged container: xlrd's path words the error
        return None
    offsets: list[int] = []
    datemode = pos = 0
    while pos + 4 <= len(stream):  # the globals' records, up to their EOF: a few hundred
        kind, length = struct.unpack_from("<HH", stream, pos)
        if kind == _BOUNDSHEET and length >= 4:
            offsets.append(struct.unpack_from("<I", stream, pos + 4)[0])
        elif kind == _DATEMODE and length >= 2:
            datemode = struct.unpack_from("<H", stream, pos + 4)[0]
        elif kind == _EOF:
            break
        pos += 4 + length
    return _Layout(stream, offsets, datemode)


def _error_cells(layout: _Layout, index: int) -> dict[int, dict[int, int]]:
    """row -> {col: error code} of every error cell in sheet `index`'s records."""
    start = layout.offsets[index]
    end = min((o for o in layout.offsets if o > start), default=len(layout.stream))
    found: dict[int, dict[int, int]] = {}
    for pattern in (_BOOLERR, _FORMULA_ERROR):
        for match in pattern.finditer(layout.stream, start, end):
            row, col, code = match.groups()
            found.setdefault(int.from_bytes(row, "little"), {})[int.from_bytes(col, "little")] = code[0]
    return found


def _calamine(path: str | os.PathLike[str], sheet: str | None) -> tuple[str, Iterator[Row | BadRow]] | None:
    """The sheet read by calamine, or None when calamine (or the layout scan) cannot read the file."""
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(os.fspath(path))
        names: list[str] = list(workbook.sheet_names)
    except Exception:  # a Rust-side refusal of any kind: xlrd decides and words it
        return None
    layout = _layout(path)
    if layout is None or len(layout.offsets) != len(names) or not names:
        return None  # sheets we cannot match to their records: let xlrd read it all
    name = _pick(names, sheet)
    try:
        data = workbook.get_sheet_by_name(name)
        # iter_rows converts row by row (the whole sheet as Python objects would be ~5x the file);
        # its rows count from the sheet's first row, its columns from the first used column.
        first_col = data.start[1] if data.start else 0
        values: Iterator[list[Any]] = iter(data.iter_rows())
    except Exception:
        return None
    errors = _error_cells(layout, names.index(name))
    base = EPOCH_1904 if layout.datemode else EPOCH_1900
    return name, _calamine_rows(values, first_col, errors, base)


def _calamine_rows(
    values: Iterator[list[Any]], first_col: int, errors: dict[int, dict[int, int]], base: datetime
) -> Iterator[Row | BadRow]:
    """Rows as text, trailing empty cells trimmed, blank rows skipped, rows with error cells bad."""
    pad: list[str | None] = [None] * first_col
    last_error_row = max(errors, default=-1)
    rx = -1
    for rx, raw in enumerate(values):
        yield from _calamine_row(rx, raw, pad, errors, base)
    for extra in range(rx + 1, last_error_row + 1):  # error cells past calamine's last row
        yield from _calamine_row(extra, [], pad, errors, base)


def _calamine_row(
    rx: int, raw: list[Any], pad: list[str | None], errors: dict[int, dict[int, int]], base: datetime
) -> Iterator[Row | BadRow]:
    """One row's text, or its BadRow, or nothing for a blank row."""
    cells = [*pad, *[(v or None) if v.__class__ is str else _text(v, base) for v in raw]]
    bad = None
    for cx, code in sorted(errors.get(rx, {}).items()):
        if cx >= len(cells) or cells[cx] is None:  # calamine shows an error cell as empty
            bad = _cell_error(rx, cx, code)
            break
    yield from _finished(rx, cells, bad)


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
    """A calamine value that is not text, by the rules xlrd's path applies (see _rows)."""
    kind = value.__class__
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
