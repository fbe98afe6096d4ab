"""One BIFF8 sheet's rows streamed from its records in place, a row (or a run of alike rows) at a time.

xlrd reads the globals (shared strings, formats, sheet offsets, date mode: `on_demand=True`), and
the sheet's records are walked in its buffer (the file's mmap when the stream is in one piece), so
memory holds one row, or one run of up to xls_runs.RUN rows, besides the shared strings: never
the sheet. A row is read record by record here once; rows after it with the same record layout
are matched and converted a run at a time (xls_runs.py).

BIFF asks for cell records in row order, and a stream cannot take back a row it has given. A sheet
whose records go back to an earlier row is refused with a ReaderError when that record comes (the
parse step fails, nothing of it applied); rows are never silently reordered or dropped. Blank
cells (BLANK, MULBLANK) hold nothing and are not held to the order.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from itertools import islice
from operator import lt
from typing import Any

import xlrd
from xlrd.biffh import unpack_unicode

from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row
from actors.readers.xls_cells import cell_error, finished, rk_value
from actors.readers.xls_runs import (
    BLANK,
    BOOLERR,
    LABELSST,
    LENGTHS,
    MULBLANK,
    MULRK,
    NUMBER,
    RK,
    ROW,
    Book,
    Layout,
    Template,
)

_BOF, _EOF, _FORMULA, _STRING, _LABEL, _RSTRING, _CONTINUE = (
    0x809,
    0x0A,
    0x06,
    0x207,
    0x204,
    0xD6,
    0x3C,
)
_FORMULA_EXTRAS = frozenset(
    (0x4BC, 0x221, 0x236)
)  # SHRFMLA, ARRAY, TABLEOP may stand before STRING
_CELLS = frozenset(
    (LABELSST, NUMBER, RK, MULRK, BOOLERR, BLANK, MULBLANK, _FORMULA, _LABEL, _RSTRING)
)
_BLANKS = frozenset((BLANK, MULBLANK))
_HEAD = struct.Struct("<HH")
_CELL = struct.Struct("<HHH")  # row, column, xf
_TEMPLATES = 64  # layouts kept compiled per sheet
_PEEK = 32  # records looked past a run's end for more cells of its last row
_RELEASE = 4 << 20  # bytes of the file read between two releases of its pages


def book_of(book: Any) -> Book:
    """The globals a sheet's cells need, from xlrd's book."""
    dates = frozenset(
        xf for xf, kind in book._xf_index_to_xl_type_map.items() if kind == xlrd.XL_CELL_DATE
    )
    return Book(book._sharedstrings, dates, book.datemode)


def stream_rows(book: Any, index: int, name: str) -> Iterator[Row | BadRow]:
    """Sheet `index`'s non-blank rows from its records, in place in xlrd's buffer of the stream."""
    mem = book.mem
    end = min(book.base + book.stream_len, len(mem))  # a stream may claim more than the file holds
    pos = book._sh_abs_posn[index]
    if not book.base <= pos < end or _header(mem, pos, end)[0] != _BOF:
        raise ReaderError(
            f"corrupt XLS workbook: sheet {name!r} does not start where the workbook says"
        )
    pos += 4 + _header(mem, pos, end)[1]
    return _Walk(mem, end, book_of(book), name).rows(pos)


def _header(mem: Any, pos: int, end: int) -> tuple[int, int]:
    """(type, length) of the record at pos; ReaderError when it runs past the stream's end."""
    if pos + 4 > end:
        raise ReaderError("corrupt or truncated XLS workbook: a sheet ends without its EOF record")
    kind, length = _HEAD.unpack_from(mem, pos)
    if pos + 4 + length > end:
        raise ReaderError(
            "corrupt or truncated XLS workbook: a record runs past the end of the stream"
        )
    return kind, length


class _Walk:
    """The walk over one sheet's records: exact rows, runs of alike rows, and the row order."""

    def __init__(self, mem: Any, end: int, book: Book, name: str) -> None:
        self.mem, self.end, self.book, self.name = mem, end, book, name
        self.last = -1  # the last row (0-based) read: the next must come after it
        self.templates: dict[Layout, Template] = {}

    def rows(self, pos: int) -> Iterator[Row | BadRow]:
        """Every non-blank row from pos to the sheet's EOF."""
        template: Template | None = None
        released = pos - pos % mmap.PAGESIZE
        while True:
            if pos - released >= _RELEASE and isinstance(self.mem, mmap.mmap):
                # the file's pages behind us leave this process's RSS (the page cache keeps them)
                self.mem.madvise(mmap.MADV_DONTNEED, released, pos - pos % mmap.PAGESIZE - released)
                released = pos - pos % mmap.PAGESIZE
            found = template.run.match(self.mem, pos, self.end) if template is not None else None
            if template is not None and found is not None:
                pos, taken = self._run(template, pos, found.end())
                yield from taken
                if pos != found.end():
                    template = None  # the run's last row goes on past it: read it record by record
                continue
            row = self._exact(pos)
            if row is None:
                return
            pos, layout, taken = row
            yield from taken
            template = self._template(layout)

    def _order(self, rx: int) -> None:
        """ReaderError when row rx does not come after the last row read."""
        if rx <= self.last:
            where = (
                f"row {rx + 1} is stored in two places" if rx == self.last
                else f"its cells for row {rx + 1} are stored after row {self.last + 1}"
            )
            raise ReaderError(
                f"sheet {self.name!r}: {where}; XLS rows must be stored once and in order to be imported "
                "(open the file in Excel and save it again)"
            )
        self.last = rx

    def _template(self, layout: Layout | None) -> Template | None:
        if layout is None or all(kind in _BLANKS for kind, _, _ in layout[1]):
            return None  # no layout, or one of blanks only (which hold no row to order)
        template = self.templates.get(layout)
        if template is None:
            if len(self.templates) >= _TEMPLATES:
                self.templates.clear()
            template = self.templates[layout] = Template(layout)
        return template

    def _run(self, template: Template, start: int, stop: int) -> tuple[int, list[Row | BadRow]]:
        """(where reading goes on, the rows) of a matched run; the run stops short of a row whose
        records go on past it, or of rows out of order, which the exact reading then takes."""
        numbers, cells, bad = template.rows(self.mem[start:stop], self.book)
        size = (stop - start) // len(numbers)
        count = len(numbers)
        if self._continues(stop, numbers[-1]):
            count -= 1
        if (
            not bad
            and count == len(numbers)
            and numbers[0] > self.last
            and all(map(lt, numbers, islice(numbers, 1, None)))
            and None not in ([row[-1] for row in cells] if cells and cells[0] else [None])
        ):  # the common run: in order, no error cell, no row to trim
            self.last = numbers[-1]
            return stop, list(zip(map((1).__add__, numbers), map(list, cells), strict=True))
        taken: list[Row | BadRow] = []
        for i in range(count):
            rx = numbers[i]
            if rx <= self.last:
                count = i
                break
            self.last = rx
            message = bad.get(i)
            row = cells[i]
            if message is None and row and row[-1] is not None:
                taken.append((rx + 1, list(row)))
            else:
                taken.extend(finished(rx, list(row), message))
        return start + count * size, taken

    def _continues(self, pos: int, rx: int) -> bool:
        """True when the next cell record after pos (within a few records) belongs to row rx."""
        for _ in range(_PEEK):
            if pos + 8 > self.end:
                return False
            kind, length = _HEAD.unpack_from(self.mem, pos)
            if kind in _CELLS and length >= 2:
                return bool(_HEAD.unpack_from(self.mem, pos + 4)[0] == rx)
            if kind in (_EOF, _BOF):
                return False
            pos += 4 + length
        return False

    def _exact(self, pos: int) -> tuple[int, Layout | None, list[Row | BadRow]] | None:
        """The next row read record by record: (where it ends, its layout if a run can repeat it,
        its row if not blank); None at the sheet's EOF."""
        mem, end = self.mem, self.end
        depth, prefix = 0, False
        while True:  # to the first cell record (at this level: embedded charts have their own)
            kind, length = _header(mem, pos, end)
            if kind == _EOF and depth == 0:
                return None
            depth += (kind == _BOF) - (kind == _EOF)
            if depth == 0 and kind in _CELLS and length >= 6:
                break
            prefix = kind == ROW and length == 16
            pos += 4 + length
        rx = _CELL.unpack_from(mem, pos + 4)[0]
        cells: dict[int, str | None] = {}
        errors: dict[int, int] = {}
        layout: list[tuple[int, int, int]] | None = []
        data = gap = False
        stop = pos
        while True:
            kind, length = _header(mem, pos, end)
            if kind == _EOF and depth == 0:
                break
            if depth == 0 and kind in _CELLS and length >= 6:
                row, col, xf = _CELL.unpack_from(mem, pos + 4)
                if row != rx:
                    break
                if kind not in _BLANKS and not data:
                    data = True
                    self._order(rx)
                pos = self._cell(kind, length, pos, col, xf, cells, errors)
                if layout is not None and not gap and _fits(kind, length):
                    layout.append((kind, length, col))
                else:
                    layout = None
                stop = pos
                continue
            depth += (kind == _BOF) - (kind == _EOF)
            gap = True
            pos += 4 + length
        if len({col for _, _, col in layout or ()}) != len(layout or ()):
            layout = None  # a cell written twice: the exact reading keeps the last; a run could not
        bad = cell_error(rx, min(errors), errors[min(errors)]) if errors else None
        width = max(cells, default=-1) + 1
        values: list[str | None] = [None] * width
        for col, text in cells.items():
            values[col] = text
        return stop, (prefix, tuple(layout)) if layout else None, list(finished(rx, values, bad))

    def _cell(
        self,
        kind: int,
        length: int,
        pos: int,
        col: int,
        xf: int,
        cells: dict[int, str | None],
        errors: dict[int, int],
    ) -> int:
        """Read the cell record at pos into cells (or errors); where the next record starts."""
        mem, book = self.mem, self.book
        body = pos + 4
        after = body + length

        def put(at: int, text: str | None) -> None:
            cells[at] = text
            errors.pop(at, None)

        if kind == LABELSST and length >= 10:
            put(col, book.string(struct.unpack_from("<I", mem, body + 6)[0]) or None)
        elif kind == NUMBER and length >= 14:
            put(col, book.number(struct.unpack_from("<d", mem, body + 6)[0], xf))
        elif kind == RK and length >= 10:
            put(col, _rk_text(struct.unpack_from("<i", mem, body + 6)[0], xf, book))
        elif kind == MULRK:
            for i in range((length - 6) // 6):
                xf_i, rk = struct.unpack_from("<Hi", mem, body + 4 + 6 * i)
                put(col + i, _rk_text(rk, xf_i, book))
        elif kind == BOOLERR and length >= 8:
            value, error = mem[body + 6], mem[body + 7]
            if error:
                cells.pop(col, None)
                errors[col] = value
            else:
                put(col, "true" if value else "false")
        elif kind in (_LABEL, _RSTRING):
            put(col, _unicode(bytes(mem[body:after]), 6) or None)
        elif kind == _FORMULA and length >= 20:
            return self._formula(body, after, col, xf, put, errors)
        return after

    def _formula(
        self, body: int, after: int, col: int, xf: int, put: Any, errors: dict[int, int]
    ) -> int:
        """A formula's cached result; a text result is in the STRING record after it."""
        mem = self.mem
        result = bytes(mem[body + 6 : body + 14])
        if result[6:8] != b"\xff\xff":
            put(col, self.book.number(struct.unpack("<d", result)[0], xf))
        elif result[0] == 1:
            put(col, "true" if result[2] else "false")
        elif result[0] == 2:
            put(col, None)
            errors[col] = result[2]
        elif result[0] == 0:
            text, after = self._string(after)
            put(col, text or None)
        else:
            put(col, None)
        return after

    def _string(self, pos: int) -> tuple[str | None, int]:
        """The STRING record (and its CONTINUEs) after a formula: (its text, where reading goes on)."""
        mem, end = self.mem, self.end
        kind, length = _header(mem, pos, end)
        while kind in _FORMULA_EXTRAS:
            pos += 4 + length
            kind, length = _header(mem, pos, end)
        if kind != _STRING or length < 3:
            return None, pos  # no cached text: the next record is read as it is
        data = bytes(mem[pos + 4 : pos + 4 + length])
        want = struct.unpack_from("<H", data)[0]
        text = _unicode(data, 0)
        pos += 4 + length
        while len(text) < want and pos + 4 <= end and _header(mem, pos, end)[0] == _CONTINUE:
            length = _header(mem, pos, end)[1]
            more = bytes(mem[pos + 5 : pos + 4 + length])
            text += (
                more.decode("utf-16-le", "replace")
                if length and mem[pos + 4] & 1
                else more.decode("latin-1")
            )
            pos += 4 + length
        return text[:want], pos


def _fits(kind: int, length: int) -> bool:
    """True for a record a run can repeat: a plain cell of its usual length, MULRK, MULBLANK."""
    if kind in (MULRK, MULBLANK):
        return length >= 12 and (length - 6) % (6 if kind == MULRK else 2) == 0
    return LENGTHS.get(kind) == length


def _rk_text(rk: int, xf: int, book: Book) -> str:
    """An RK cell's text: whole numbers straight, the rest through rk_value."""
    if rk & 3 == 2 and xf not in book.dates:
        return str(rk >> 2)
    return book.number(rk_value(rk), xf)


def _unicode(data: bytes, at: int) -> str:
    """A BIFF8 string with a 2-byte length at `at`; ReaderError when it is malformed."""
    try:
        return str(unpack_unicode(data, at, lenlen=2))
    except Exception as exc:
        raise ReaderError(f"corrupt XLS workbook: a text cell cannot be read ({exc!r})") from exc
