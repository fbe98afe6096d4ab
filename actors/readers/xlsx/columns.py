"""Raw values of many rows converted a column at a time, in C loops, by the same rules as one cell."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import repeat
from operator import add, mul

import msgspec

from actors.readers.cells import (
    EPOCH_1900,
    EPOCH_1904,
    MAX_SERIAL,
    date_text,
    datetime_texts,
    float_texts,
    iso_text,
)
from actors.readers.xlsx.markup import unescape_ooxml
from actors.readers.xlsx.strings import SharedStrings
from actors.readers.xlsx.template import Template

# What a column that breaks the bulk rules raises; its rows are then read one by one, exactly.
CONVERSION_ERRORS = (ValueError, IndexError, OverflowError)
_BOOLS = {
    "1": "true",
    "0": "false",
    "true": "true",
    "false": "false",
    "TRUE": "true",
    "FALSE": "false",
}
_LEADING_ZERO = re.compile("\x000[0-9]")
# Decimals (\x00-separated) that float_text gives back as written, once zeros after the point
# are cut, when they have at most 15 digits (any such decimal survives the trip to a double and
# back): no leading zero, no exponent, no sign but '-', not -0. A fifth of the cost of converting.
_DECIMALS = re.compile(r"(?:-?[1-9][0-9]*+(?:\.[0-9]*+)?\x00|-?0\.[0-9]*+\x00|0\x00)*+")
_NEGATIVE_ZERO = re.compile(r"\x00-0\.0*\x00")
_TRAILING_ZEROS = re.compile(r"(\.[0-9]*?)0+\x00")
_INDICES = msgspec.json.Decoder(list[int])
_DATES_KEPT = 1 << 16  # date serials remembered per sheet (a table's dates repeat: days, months)


class ColumnText:
    """Converts columns of one sheet's raw values (its date system, its shared strings) to text."""

    def __init__(self, strings: SharedStrings, date1904: bool) -> None:
        self._strings = strings
        self._date1904 = date1904
        self._dates: dict[str, str] = {}  # serial as written -> its text

    def convert(self, kind: str, column: list[str]) -> list[str]:
        """A column of one kind's raw values as text (the column itself when nothing changes)."""
        # No table of bound methods: it would make a reference cycle that keeps the shared
        # strings (tens of MB) alive after the read, until the next full collection.
        if kind == "s":
            return self.shared(column)
        if kind == "date":
            return self.dates(column)
        if kind == "raw":
            return list(map(unescape_ooxml, column)) if "_x" in "".join(column) else column
        return _BY_KIND[kind](column)

    def convert_batch(self, t: Template) -> None:
        """Convert a template's batch in place, a column at a time; on any surprise mark it failed."""
        batch, step = t.batch, t.count
        try:
            for kind, slots in t.columns.items():
                if kind == "e":
                    continue  # error cells are reported, not converted
                for k in slots:
                    column = batch[k::step]
                    converted = self.convert(kind, column)
                    if converted is not column:
                        batch[k::step] = converted
        except CONVERSION_ERRORS:
            t.failed = True  # the exact reader gives each row the precise answer (or BadRow)

    def shared(self, raw: Sequence[str]) -> list[str]:
        """Shared-string indices to their entries (IndexError when any is missing)."""
        try:  # int() of each, in one C call: any JSON integer is one int() reads the same
            idx = _INDICES.decode("[" + ",".join(raw) + "]")
        except msgspec.DecodeError:  # "+1", "1_0", "01", " 7\u2003": int() decides
            idx = list(map(int, raw))
        if len(idx) != len(raw):  # a value holding a comma
            idx = list(map(int, raw))
        if min(idx) < 0:
            raise IndexError
        strings, top = self._strings, max(idx)
        if top >= strings.count:
            strings.load(top)
            if top >= strings.count:
                raise IndexError(top)
        return strings.many(idx)

    def dates(self, raw: Sequence[str]) -> list[str]:
        """date_text for a column: serials seen before from memory, the others as _new_dates."""
        known = self._dates
        texts = list(map(known.get, raw))
        if None not in texts:
            return texts  # type: ignore[return-value]
        new = [v for v in set(raw) if v not in known]
        if len(known) + len(new) > _DATES_KEPT:
            known.clear()
            new = list(set(raw))
        known.update(zip(new, self._new_dates(new), strict=True))
        return list(map(known.__getitem__, raw))

    def _new_dates(self, raw: Sequence[str]) -> list[str]:
        """date_text for many serials, in C loops while every serial is a plain modern date."""
        floats = list(map(float, raw))
        if min(floats) < (1 if self._date1904 else 61) or max(floats) >= MAX_SERIAL - 1:
            return [date_text(v, self._date1904) for v in raw]  # times of day, Excel's 1900 quirk
        ms = map(round, map(mul, floats, repeat(86_400_000)))  # Excel keeps milliseconds
        base = EPOCH_1904 if self._date1904 else EPOCH_1900
        days = map(timedelta, repeat(0), repeat(0), repeat(0), ms)
        return datetime_texts(map(add, repeat(base), days))


def numbers(raw: Sequence[str]) -> list[str]:
    """number_text for many cells at once: plain decimals by a regex check (and their trailing
    zeros cut), others by repr in C, then '.0' dropped from integral values."""
    if max(map(len, raw)) < 16:
        joined = "\x00".join(raw) + "\x00"
        digits = "".join(raw)
        if digits.isascii() and digits.isdigit():
            if not _LEADING_ZERO.search("\x00" + joined):
                return list(raw)  # plain integers are already canonical
        elif _DECIMALS.fullmatch(joined) and not _NEGATIVE_ZERO.search("\x00" + joined):
            if "0\x00" not in joined and ".\x00" not in joined:
                return list(raw)
            if joined.count(".") == len(raw):  # all with a point, where cutting zeros stops
                while "0\x00" in joined:
                    joined = joined.replace("0\x00", "\x00")
            else:
                joined = _TRAILING_ZEROS.sub("\\1\x00", joined)
            return joined.replace(".\x00", "\x00")[:-1].split("\x00")
    return float_texts(list(map(float, raw)))


def booleans(raw: Sequence[str]) -> list[str]:
    """Boolean cells' raw values as 'true'/'false' (ValueError for anything else)."""
    got = list(map(_BOOLS.get, raw))
    if None in got:
        raise ValueError("not a boolean")
    return got  # type: ignore[return-value]


def isos(raw: Sequence[str]) -> list[str]:
    """ISO 8601 cells (t="d") as iso_text gives them."""
    return [iso_text(v.strip()) for v in raw]


_BY_KIND: dict[str, Callable[[Sequence[str]], list[str]]] = {"num": numbers, "b": booleans, "iso": isos}
