"""XLS (BIFF, Excel 97-2003), with cells as text by the same rules as XLSX.

Cell values come from python-calamine (Rust; about 6x xlrd's rate here). calamine's Python
binding turns error cells (#DIV/0!, #N/A, ...) into empty strings, so the sheet's BOOLERR and
FORMULA records are scanned for error results (two C-speed regex passes over the sheet's own
stream, located through xlrd's reading of the workbook globals), and those cells make BadRows as
before. If calamine cannot read a file, xlrd reads it instead, with its precise error messages.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import python_calamine
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
        name = _sheet_name(book, sheet)
    for item in read_xls(path, name):
        if isinstance(item, BadRow):
            raise ReaderError(
                f"sheet {name!r}, row {item.line}: cannot read the first row: {item.message}"
            )
        return name, tuple(item[1])
    raise ReaderError(f"sheet {name!r} has no rows (it is blank)")


def read_xls(path: str | os.PathLike[str], sheet: str | None) -> Iterator[Row | BadRow]:
    """Stream the sheet's non-blank rows as (row number, cells); BadRow for rows with error cells."""
    with _open(path) as book:
        name = _sheet_name(book, sheet)
        fast = _calamine_rows(path, book, name)
        if fast is None:  # calamine refused the file: xlrd reads it (and words any error)
            yield from _sheet(book, sheet)[1]
            return
    yield from fast


# BIFF8 cell records holding an error: BOOLERR (0x0205, 8 bytes, last byte 1 = error) and FORMULA
# (0x0006) whose cached result is an error (byte 0 = 2, bytes 6-7 = 0xFFFF). Groups: row, col, code.
_BOOLERR = re.compile(rb"\x05\x02\x08\x00(..)(..)..(.)\x01", re.DOTALL)
_FORMULA_ERROR = re.compile(rb"\x06\x00..(..)(..)..\x02.(.)...\xff\xff", re.DOTALL)


def _error_cells(book: Any, index: int) -> dict[tuple[int, int], int]:
    """(row, col) -> error code of every error cell in sheet `index`'s BIFF substream."""
    mem = getattr(book, "mem", None)
    offsets: list[int] = list(getattr(book, "_sh_abs_posn", []))
    if mem is None or index >= len(offsets):
        return {}
    start = offsets[index]
    end = min((o for o in offsets if o > start), default=len(mem))
    found: dict[tuple[int, int], int] = {}
    for pattern in (_BOOLERR, _FORMULA_ERROR):
        for match in pattern.finditer(mem, start, end):
            row, col, code = match.groups()
            found[(int.from_bytes(row, "little"), int.from_bytes(col, "little"))] = code[0]
    return found


def _calamine_rows(path: str | os.PathLike[str], book: Any, name: str) -> list[Row | BadRow] | None:
    """The sheet's rows read by calamine (None when calamine cannot read the file)."""
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(os.fspath(path))
        values: list[list[Any]] = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception:  # a Rust-side refusal of any kind: xlrd decides and words it
        return None
    errors = _error_cells(book, book.sheet_names().index(name))
    base = datetime(1904, 1, 1) if book.datemode else datetime(1899, 12, 30)
    out: list[Row | BadRow] = []
    height = max(len(values), max((r for r, _ in errors), default=-1) + 1)
    for rx in range(height):
        raw = values[rx] if rx < len(values) else []
        cells = [_text(value, base) for value in raw]
        bad = None
        if errors:
            width = max(len(raw), max((c for r, c in errors if r == rx), default=-1) + 1)
            for cx in range(width):
                code = errors.get((rx, cx))
                if code is not None and (cx >= len(cells) or cells[cx] is None):
                    error = xlrd.error_text_from_code.get(code, f"#ERR{code}")
                    bad = f"cell {xlrd.formula.cellname(rx, cx)} holds the error {error}"
                    break
        while cells and cells[-1] is None:
            cells.pop()
        if bad is not None:
            out.append(BadRow(rx + 1, bad))
        elif cells:
            out.append((rx + 1, cells))
    return out


def _text(value: Any, base: datetime) -> str | None:
    """A calamine value as text, by the rules xlrd's path applies (see _rows)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float_text(float(value))
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):  # a duration-formatted serial: the moment xlrd would give
        return datetime_text(base + value)
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
    """The named sheet (exactly, else ignoring case and spaces), or the first."""
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
    return name


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
