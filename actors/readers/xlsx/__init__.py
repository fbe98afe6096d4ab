"""XLSX: stream one worksheet's rows straight from the zip, inside an unpacking budget.

How, since pyexpat's per-element callbacks alone run at a fraction of python-calamine's speed:
the sheet XML is decoded a chunk at a time and cut at each <row. A row is split into tokens at
"<"; the first row of each shape teaches a template (which tokens hold values, which hold only
markup with the row number in cell references), and every later row with the same markup is
read through it: a run of alike rows by one split with the template made a regex, its values
converted in bulk, a column at a time. Any row the template path cannot vouch for (rich text,
odd quoting, comments, anything unknown) is parsed by expat callbacks instead, and the two paths
are tested to agree. No DTD is ever processed: one could only stand in a part's prolog, which is refused.

The rooms: archive.py (the zip and its guards), workbook.py (relationships, sheets, styles),
markup.py (safe XML), strings.py (shared strings), sheet.py (iteration), template.py and
columns.py (the fast path), exact.py (the exact path); cell text rules in actors/readers/cells.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

from actors.readers.errors import BadRow
from actors.readers.sheets import Row, first_row
from actors.readers.xlsx.workbook import Workbook

__all__ = ["inspect_xlsx", "read_xlsx"]


def inspect_xlsx(path: str, sheet: str | None, budget: int) -> tuple[str, tuple[str | None, ...]]:
    """Resolve the sheet and read its first non-blank row, inflating only what that needs."""
    with Workbook(path, budget) as book:
        name, part = book.pick(sheet)
        with closing(book.rows(part)) as rows:
            return name, first_row(name, rows)


def read_xlsx(
    path: str, sheet: str | None, budget: int, *, fast: bool = True
) -> Iterator[Row | BadRow]:
    """Stream the sheet's non-blank rows as (row number, cells); BadRow for rows with error cells.

    fast=False reads every row and shared string by expat callbacks: the reference reading the
    template path is tested against.
    """
    with Workbook(path, budget) as book:
        yield from book.rows(book.pick(sheet)[1], fast)
