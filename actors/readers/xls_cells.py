"""XLS cell text rules both XLS paths share (xlrd's and the streaming one): numbers, dates, errors, rows."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache

import xlrd

from actors.readers.cells import datetime_text, float_text
from actors.readers.errors import BadRow
from actors.readers.sheets import Row

_DOUBLE = struct.Struct("<d")
_HIGH_WORD = struct.Struct("<Q")


class Quiet:
    """A log sink: xlrd writes warnings about odd-but-readable files to stdout otherwise."""

    def write(self, _: str) -> int:
        return 0


def cell_error(rx: int, cx: int, code: int) -> str:
    """The BadRow message for an error cell (0-based row and column)."""
    error = xlrd.error_text_from_code.get(code, f"#ERR{code}")
    return f"cell {xlrd.formula.cellname(rx, cx)} holds the error {error}"


@lru_cache(maxsize=8192)
def date_cell(value: float, datemode: int) -> str:
    """A date cell as ISO 8601; a serial below 1 is a time of day; out of range stays a number.

    Cached: a table's dates repeat (a date column of 60k rows holds a few thousand days)."""
    try:
        moment = xlrd.xldate_as_datetime(value, datemode)
    except (ValueError, OverflowError, xlrd.xldate.XLDateError):
        return float_text(value)
    if 0 <= value < 1:
        return str(moment.time().isoformat())
    return datetime_text(moment)


def rk_value(rk: int) -> float:
    """An RK number (a 30-bit integer or the top of a double, maybe /100) as xlrd gives it: a float."""
    if rk & 2:
        value = float(rk >> 2)  # rk is read signed: >> keeps the sign
    else:
        value = _DOUBLE.unpack(_HIGH_WORD.pack((rk & 0xFFFFFFFC) << 32))[0]
    return value / 100 if rk & 1 else value


def finished(rx: int, cells: list[str | None], bad: str | None) -> Iterator[Row | BadRow]:
    """A read row as the readers give it: its BadRow, or its cells without trailing empties, or
    nothing for a blank row. Rows are numbered from 1."""
    while cells and cells[-1] is None:
        cells.pop()
    if bad is not None:
        yield BadRow(rx + 1, bad)
    elif cells:
        yield rx + 1, cells
