"""The readers' two kinds of problem: a file-level ReaderError and a row-level BadRow."""

from __future__ import annotations

import msgspec


class ReaderError(Exception):
    """A file-level problem a caller can act on; str(exc) is a complete sentence."""


class BadRow(msgspec.Struct, frozen=True):
    """A row that cannot be read; reading goes on past it."""

    line: int  # CSV: the physical line where the record starts; sheets: the sheet row number
    message: str
