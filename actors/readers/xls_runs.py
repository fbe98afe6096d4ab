"""Runs of XLS rows that repeat one record layout, read a run at a time instead of a record at a time.

A row read record by record (xls_stream.py) leaves its layout: which cell records, of which lengths,
at which columns, with or without a ROW record before them. The layout compiles to a regex that
matches one whole row with those exact headers and columns (the row number captured by the first
record and required again, by backreference, in every other one), repeated up to RUN rows; a
match is a run of rows the record-by-record reading would read the same way. One struct unpacks
the run, and its values turn into text a column at a time, in C loops where a column allows.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from itertools import repeat
from typing import Any, NamedTuple

from actors.readers.cells import float_text, float_texts
from actors.readers.errors import ReaderError
from actors.readers.xls_cells import cell_error, date_cell, rk_value
from actors.readers.xls_strings import SharedStrings

ROW, LABELSST, NUMBER, RK, MULRK, BOOLERR, BLANK, MULBLANK = (
    0x208,
    0xFD,
    0x203,
    0x27E,
    0xBD,
    0x205,
    0x201,
    0xBE,
)
RUN = 1024  # rows one match may take: bounds the bytes copied and the rows converted together
_FIELDS = {
    LABELSST: "HI",
    NUMBER: "Hd",
    RK: "Hi",
    BOOLERR: "HBB",
}  # after row and column: xf, value(s)
LENGTHS = {
    LABELSST: 10,
    NUMBER: 14,
    RK: 10,
    BOOLERR: 8,
    BLANK: 6,
}  # the only lengths a layout takes
_BOOL_TEXT = ("false",) + ("true",) * 255

Layout = tuple[
    bool, tuple[tuple[int, int, int], ...]
]  # (ROW record first?, (type, length, column) each)


class Book(NamedTuple):
    """What a sheet's cells need from the workbook's globals."""

    strings: SharedStrings  # the shared strings (SST), decoded as far as cells ask
    dates: frozenset[int]  # XF indexes whose number format shows a date or time
    datemode: int  # 0: 1900-based serials, 1: 1904-based

    def string(self, index: int) -> str:
        """Shared string `index`; ReaderError when the table has no such entry."""
        if 0 <= index < self.strings.ensure(index + 1):
            return self.strings.items[index]
        raise ReaderError(
            f"corrupt XLS workbook: a cell refers to shared string {index}, but there are {len(self.strings)}"
        )

    def number(self, value: float, xf: int) -> str:
        """A number cell's text: a date or time when its format shows one."""
        return date_cell(value, self.datemode) if xf in self.dates else float_text(value)


class Template:
    """A compiled layout: the run regex, the row struct, and where each column's values sit in it."""

    def __init__(self, layout: Layout) -> None:
        prefix, cells = layout
        pattern = [re.escape(struct.pack("<HH", ROW, 16)) + b".{16}"] if prefix else []
        fmt = ["<20x"] if prefix else ["<"]
        self.columns: list[
            tuple[int, int, int]
        ] = []  # (record type, column, index of its xf field)
        field = 1  # field 0 is the row number
        for n, (kind, length, col) in enumerate(cells):
            head = re.escape(struct.pack("<HH", kind, length)) + (b"(..)" if n == 0 else rb"\1")
            head += re.escape(struct.pack("<H", col))
            fmt.append("4xH2x" if n == 0 else "8x")
            if kind == MULRK:
                count = (length - 6) // 6
                pattern.append(
                    head + b".{%d}" % (6 * count) + re.escape(struct.pack("<H", col + count - 1))
                )
                fmt.append("Hi" * count + "2x")
                self.columns += [(RK, col + i, field + 2 * i) for i in range(count)]
                field += 2 * count
            elif kind in _FIELDS:
                pattern.append(head + b".{%d}" % (length - 4))
                fmt.append(_FIELDS[kind])
                self.columns.append((kind, col, field))
                field += len(_FIELDS[kind])
            else:  # BLANK, MULBLANK: nothing to read
                pattern.append(head + b".{%d}" % (length - 4))
                fmt.append(f"{length - 4}x")
        self.columns.sort(key=lambda column: column[1])
        self.width = self.columns[-1][1] + 1 if self.columns else 0
        self.run = re.compile(b"(?:" + b"".join(pattern) + b"){1,%d}" % RUN, re.DOTALL)
        self.row = struct.Struct("".join(fmt))

    def rows(
        self, data: bytes, book: Book
    ) -> tuple[Sequence[int], list[tuple[str | None, ...]], dict[int, str]]:
        """(row numbers, cells of each row, {index in the run: BadRow message}) of a matched run."""
        fields = list(zip(*self.row.iter_unpack(data), strict=True))
        numbers: Sequence[int] = fields[0]
        count = len(numbers)
        empty: tuple[None, ...] = (None,) * count
        texts: dict[int, Sequence[str | None]] = {}
        bad: dict[int, str] = {}
        for kind, col, at in self.columns:  # in column order: a row's first error cell names it
            xfs, values = fields[at], fields[at + 1]
            if kind == LABELSST:
                texts[col] = _strings(values, book)
            elif kind == BOOLERR:
                texts[col] = _booleans(values, fields[at + 2], numbers, col, bad)
            else:
                texts[col] = _numbers(xfs, values, kind == RK, book)
        columns = [texts.get(col, empty) for col in range(self.width)]
        return numbers, list(zip(*columns, strict=True)) if columns else [()] * count, bad


def _strings(indexes: Sequence[int], book: Book) -> Sequence[str | None]:
    """A column of shared-string cells; an empty string is an empty cell."""
    top = max(indexes)
    if book.strings.ensure(top + 1) <= top:
        book.string(top)  # raises, naming the index
    found: list[str] = list(map(book.strings.items.__getitem__, indexes))
    return [text or None for text in found] if "" in found else found


def _numbers(xfs: Sequence[int], values: Sequence[Any], rk: bool, book: Book) -> Sequence[str]:
    """A column of number (or RK) cells as text, dates by their format."""
    plain = book.dates.isdisjoint(xfs)
    floats: Sequence[float]
    flags = {v & 3 for v in values} if rk else set()
    if flags == {2}:  # whole RK numbers: the common case
        if plain:
            return [str(v >> 2) for v in values]
        floats = [float(v >> 2) for v in values]
    elif flags == {3}:  # whole hundredths (cents)
        floats = [(v >> 2) / 100 for v in values]
    else:
        floats = list(map(rk_value, values)) if rk else values
    if plain:
        return float_texts(floats)
    if book.dates.issuperset(xfs):
        return list(map(date_cell, floats, repeat(book.datemode)))
    return [book.number(value, xf) for xf, value in zip(xfs, floats, strict=True)]


def _booleans(
    values: Sequence[int],
    errors: Sequence[int],
    numbers: Sequence[int],
    col: int,
    bad: dict[int, str],
) -> Sequence[str | None]:
    """A column of BOOLERR cells; an error cell marks its row bad."""
    if not any(errors):
        return list(map(_BOOL_TEXT.__getitem__, values))
    for i, (value, error) in enumerate(zip(values, errors, strict=True)):
        if error:
            bad.setdefault(i, cell_error(numbers[i], col, value))
    return [
        None if error else _BOOL_TEXT[value] for value, error in zip(values, errors, strict=True)
    ]
