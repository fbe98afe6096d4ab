"""What calamine does not tell about an XLS: where each sheet's BIFF records start, the date system,
and which cells hold errors (#DIV/0!, #N/A, ...; calamine's Python binding shows them as empty).

Read from the compound document's workbook stream through an mmap of the file: the globals are a
few hundred records at the stream's start, and the error scan is two C-speed regex passes over one
sheet's records, in place (xlwt and Excel write the stream in one piece; a fragmented one is
joined).
Nothing here holds the file in memory once a function returns.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from xlrd import compdoc

# BIFF8 cell records holding an error: BOOLERR (0x0205, 8 bytes, last byte 1 = error) and FORMULA
# (0x0006) whose cached result is an error (byte 0 = 2, bytes 6-7 = 0xFFFF). Groups: row, col, code.
_BOOLERR = re.compile(rb"\x05\x02\x08\x00(..)(..)..(.)\x01", re.DOTALL)
_FORMULA_ERROR = re.compile(rb"\x06\x00..(..)(..)..\x02.(.)...\xff\xff", re.DOTALL)
_BOUNDSHEET, _DATEMODE, _EOF = 0x0085, 0x0022, 0x000A


class Quiet:
    """A log sink: xlrd writes warnings about odd-but-readable files to stdout otherwise."""

    def write(self, _: str) -> int:
        return 0


class Globals(NamedTuple):
    """What the globals say that calamine does not: each sheet's record offset, the date system."""

    offsets: list[int]
    datemode: int


@contextmanager
def _stream(path: str | os.PathLike[str]) -> Iterator[tuple[Any, int, int]]:
    """(buffer, start, size) of the workbook stream; the buffer is the file's mmap when the stream
    lies in one piece. Raises on any damage (the callers let xlrd word it)."""
    with open(path, "rb") as raw:
        data = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        doc = compdoc.CompDoc(data, logfile=Quiet())
        for stream_name in ("Workbook", "Book"):  # BIFF8, then BIFF5
            mem, base, size = doc.locate_named_stream(stream_name)
            if mem is not None:
                yield mem, base, size
                return
        raise compdoc.CompDocError("no workbook stream")
    finally:
        data.close()


def read_globals(path: str | os.PathLike[str]) -> Globals | None:
    """The sheets' record offsets and the date mode, or None when the stream cannot be found."""
    try:
        with _stream(path) as (mem, base, size):
            offsets: list[int] = []
            datemode = pos = 0
            while pos + 4 <= size:  # the globals' records, up to their EOF: a few hundred
                kind, length = struct.unpack_from("<HH", mem, base + pos)
                if kind == _BOUNDSHEET and length >= 4 and pos + 8 <= size:
                    offsets.append(struct.unpack_from("<I", mem, base + pos + 4)[0])
                elif kind == _DATEMODE and length >= 2 and pos + 6 <= size:
                    datemode = struct.unpack_from("<H", mem, base + pos + 4)[0]
                elif kind == _EOF:
                    break
                pos += 4 + length
            return Globals(offsets, datemode)
    except Exception:  # a damaged container: xlrd's path words the error
        return None


def error_cells(
    path: str | os.PathLike[str], offsets: list[int], index: int
) -> dict[int, dict[int, int]]:
    """row -> {col: error code} of every error cell in sheet `index`'s records (0-based)."""
    start = offsets[index]
    end = min((o for o in offsets if o > start), default=None)
    found: dict[int, dict[int, int]] = {}
    with _stream(path) as (mem, base, size):
        stop = base + min(size, end if end is not None else size)
        for pattern in (_BOOLERR, _FORMULA_ERROR):
            for match in pattern.finditer(mem, base + min(start, size), stop):
                row, col, code = (int.from_bytes(group, "little") for group in match.groups())
                found.setdefault(row, {})[col] = code
    return found
