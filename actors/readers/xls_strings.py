"""An XLS workbook's globals read by xlrd, its shared strings (SST) decoded only as far as cells ask.

xlrd decodes the whole SST when the workbook opens (0.16 s and ~20 MB for 120k strings), which the
API's first-row check does not need: the header's strings are the table's first few. Here the
SST record and its CONTINUEs are kept as bytes and decoded by the same rules as xlrd's
unpack_SST_table, on demand, in order. Every step moves forward through the bytes (a string takes
three bytes at least), so a table that claims more strings than it holds ends where its bytes end,
and a cell that refers past that end is a ReaderError.
"""

from __future__ import annotations

import os
from typing import Any

import xlrd
from xlrd.biffh import XL_CONTINUE, XL_WORKBOOK_GLOBALS

from actors.readers.errors import ReaderError
from actors.readers.xls_cells import Quiet

_BIFF8 = 80


class SharedStrings:
    """The SST, decoded as far as asked: `items[i]` is string i once `ensure(i + 1)` has run."""

    def __init__(self, pieces: list[bytes], count: int) -> None:
        self.items: list[str] = []
        self._pieces, self._left = pieces, max(count, 0)
        self._at = (0, 8)  # (piece, position): past the SST's two counts

    def __len__(self) -> int:
        return len(self.items)

    def ensure(self, count: int) -> int:
        """Decode until `count` strings are known, or the table ends; how many are known."""
        if count > len(self.items) and self._left:
            self._decode(count)
        return len(self.items)

    def _decode(self, count: int) -> None:
        items, pieces = self.items, self._pieces
        append, before = items.append, len(items)
        k, pos = self._at
        data = pieces[k] if k < len(pieces) else b""
        latin = data.decode("latin-1")  # one character a byte: a plain string is a slice of it
        want = min(count - before, self._left)
        try:
            while want:
                nchars = data[pos] | data[pos + 1] << 8
                if not data[pos + 2] and pos + 3 + nchars < len(data):  # plain and whole: most
                    append(latin[pos + 3 : pos + 3 + nchars])
                    pos += 3 + nchars
                else:
                    text, at, pos = self._string(nchars, data[pos + 2], k, pos + 3)
                    if at != k:
                        k = at
                        data = pieces[k] if k < len(pieces) else b""
                        latin = data.decode("latin-1")
                    append(text)
                want -= 1
        except IndexError:
            self._left = 0  # the bytes ended before the strings the table claims: it holds these
        except UnicodeDecodeError as exc:
            raise ReaderError(
                f"corrupt XLS workbook: shared string {len(items)} cannot be read ({exc})"
            ) from exc
        self._left = max(self._left - (len(items) - before), 0)
        self._at = (k, pos)

    def _string(self, nchars: int, flags: int, k: int, pos: int) -> tuple[str, int, int]:
        """A string with rich text, phonetics, two-byte characters or a CONTINUE inside, as xlrd
        reads it: (text, piece and position after it). IndexError when the bytes end."""
        pieces = self._pieces
        data = pieces[k]
        runs = phonetic = 0
        if flags & 8:
            runs = data[pos] | data[pos + 1] << 8
            pos += 2
        if flags & 4:
            phonetic = int.from_bytes(data[pos : pos + 4], "little")  # unsigned: never backwards
            pos += 4
        end = pos + (nchars << (flags & 1))
        if end <= len(data):
            text = data[pos:end].decode("utf-16-le" if flags & 1 else "latin-1")
            pos = end
        else:  # the characters go on in the next CONTINUE, which starts with flags of its own
            text, k, pos = self._split(nchars, flags & 1, k, pos)
        for _ in range(runs):  # rich-text runs, 4 bytes each, never split
            if pos == len(pieces[k]):
                k, pos = k + 1, 0
            pos += 4
        pos += phonetic
        if pos >= len(pieces[k]):
            pos -= len(pieces[k])
            k += 1
        return text, k, pos

    def _split(self, nchars: int, wide: int, k: int, pos: int) -> tuple[str, int, int]:
        """A string whose characters run over into the next pieces: (text, piece, position after)."""
        parts: list[str] = []
        got = 0
        while True:
            data = self._pieces[k]
            step = min((len(data) - pos) >> wide, nchars - got)
            parts.append(
                data[pos : pos + (step << wide)].decode("utf-16-le" if wide else "latin-1")
            )
            pos += step << wide
            got += step
            if got == nchars:
                return "".join(parts), k, pos
            k += 1
            wide, pos = self._pieces[k][0] & 1, 1


class _Globals(xlrd.book.Book):  # type: ignore[misc]
    """xlrd's book, keeping the SST's bytes instead of decoding them all."""

    def handle_sst(self, data: bytes) -> None:
        pieces = [data]
        while True:
            code, _, more = self.get_record_parts_conditional(XL_CONTINUE)
            if code is None:
                break
            pieces.append(more)
        count = int.from_bytes(data[4:8], "little", signed=True) if len(data) >= 8 else 0
        self._sharedstrings = SharedStrings(pieces, count)


def open_globals(path: str | os.PathLike[str]) -> Any | None:
    """A BIFF8 workbook's globals (on demand: no sheet is read) with a lazy SST; None for older
    BIFF versions. Raises what xlrd raises."""
    book = _Globals()
    try:
        book.biff2_8_load(filename=os.fspath(path), logfile=Quiet(), on_demand=True)
        version = book.getbof(XL_WORKBOOK_GLOBALS)
        if version != _BIFF8:
            book.release_resources()
            return None
        book.biff_version = version
        book.parse_globals()
        book._sheet_list = [None for _ in book._sheet_names]
        book.nsheets = len(book._sheet_list)
        return book
    except BaseException:
        book.release_resources()
        raise
