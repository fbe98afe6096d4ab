"""Sheet iteration: a worksheet's XML cut at each <row, each row read by a template or exactly.

Where the markup repeats (the usual case: every row of a table looks alike) rows are read through
the template they share, runs of alike rows a column at a time; any row no template fits is read
by the exact path, and the two are tested to agree. fast=False reads every row exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import groupby, repeat
from typing import Any

from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row
from actors.readers.xlsx.columns import CONVERSION_ERRORS, ColumnText
from actors.readers.xlsx.exact import MAX_COLUMNS, ExactRows
from actors.readers.xlsx.markup import ROW_XML_LIMIT, PartText, Readable
from actors.readers.xlsx.strings import SharedStrings
from actors.readers.xlsx.template import Template, learn_template, row_values, run_values

_NOT_A_ROW = re.compile(r"<row[^\s/>]")
_ROW_NUMBER = re.compile(r'(?:^|\s)r\s*=\s*["\']([0-9]+)["\']')
_MIN_RUN = 8  # rows sharing a template before they are read column-wise
_GIVE_UP = 64  # rows in a row no template fits: then try learning only every _RETRY rows
_RETRY = 1024
_TEMPLATES_PER_SHAPE = 4  # templates kept per token count; more shapes than this just re-learn

# One queued row: (number, its template or None to read it exactly, its slot in the template's
# batch, its number as written, its XML after "<row"); or rows a run has read already.
Planned = tuple[int, Template | None, int, str, str] | list[Row | BadRow]


class SheetReader:
    """A worksheet's rows, read as each chunk of XML completes them."""

    def __init__(
        self,
        part: Readable,
        strings: SharedStrings,
        date_styles: frozenset[str],
        date1904: bool,
        fast: bool = True,
    ) -> None:
        self._text = PartText(part)
        self._strings = strings
        self._date_styles = date_styles
        self._date1904 = date1904
        self._fast = fast
        self._templates: dict[int, list[Template]] = {}
        self._misses = 0
        self._row_no = 0
        self._exact: ExactRows | None = None
        self._columns = ColumnText(strings, date1904)
        self.out: list[Row | BadRow] = []

    def rows(self) -> Iterator[Row | BadRow]:
        """Yield rows as each chunk of XML completes them."""
        text = self._text
        pending = ""
        inside = False
        while not text.done:
            ready, held = text.normalise(pending + text.read())
            if not inside:
                start = ready.find("<sheetData")
                close = ready.find(">", start) if start >= 0 else -1
                if close >= 0 and ready[close - 1] == "/":
                    return  # <sheetData/>: no rows at all
                if close >= 0:
                    inside = True
                    ready = ready[close + 1 :]
            if inside:
                end = ready.find("</sheetData")
                if end >= 0:
                    self._read_whole_rows(ready[:end])
                    yield from self.out
                    return  # nothing after sheetData is read
                cut = ready.rfind("<row")
                if cut > 0:
                    self._read_whole_rows(ready[:cut])
                    ready = ready[cut:]
            pending = ready + held
            if len(pending) > ROW_XML_LIMIT:
                raise ReaderError(
                    f"sheet XML after row {self._row_no} holds a row larger than {ROW_XML_LIMIT} characters; refused"
                )
            if self.out:
                yield from self.out
                self.out.clear()

    def _read_whole_rows(self, xml: str) -> None:
        """Read every row in xml, which holds whole <row> elements only, onto self.out."""
        if "\x00" in xml:  # never valid XML; the column-wise checks use it as their separator
            raise ReaderError("corrupt workbook: its sheet XML holds a NUL character")
        pieces = xml.split("<row")
        if _NOT_A_ROW.search(xml):  # "<rowFoo" is no row start: glue such pieces back on
            for i in range(len(pieces) - 1, 0, -1):
                if pieces[i][:1] not in " \t\r\n/>":
                    pieces[i - 1] += "<row" + pieces.pop(i)
        if pieces[0].strip():  # anything but rows in sheetData: let expat judge it
            self._read_exactly(pieces[0], self._row_no)
        plan: list[Planned] = []
        used: list[Template] = []
        plain = "&" not in xml and "\r" not in xml  # no references to resolve, no line ends to fold
        counts = list(map(str.count, pieces, repeat("<")))
        for _, run in groupby(range(1, len(pieces)), counts.__getitem__):
            first, *rest = run
            fit = self._queue_row(pieces[first], plan, used, plain)
            if fit is not None and len(rest) >= _MIN_RUN:
                got = self._read_run(fit, pieces[rest[0] : rest[-1] + 1], plain)
                if got is not None:
                    plan.append(got)
                    continue
            for i in rest:
                self._queue_row(pieces[i], plan, used, plain)
        for template in used:
            self._columns.convert_batch(template)
        self._emit(plan)
        for template in used:
            template.batch = []
            template.failed = False

    def _emit(self, plan: list[Planned]) -> None:
        """The planned rows onto self.out in sheet order, from their converted batches or exactly."""
        out = self.out
        for entry in plan:
            if isinstance(entry, list):
                out.extend(entry)
                continue
            row_no, fit, slot, row_str, piece = entry
            if fit is None or fit.failed:
                self._read_exactly("<row" + piece, row_no)
            elif fit.errors:
                k, ref = fit.errors[0]
                error = fit.batch[slot + k].strip()
                out.append(BadRow(row_no, f"cell {ref}{row_str} holds the error {error}"))
            else:
                row: list[str | None] = list(fit.gather(fit.batch[slot : slot + fit.count]))
                if "" in row:  # empty shared strings are blank cells
                    row = _trimmed(row)
                if row:
                    out.append((row_no, row))

    def _queue_row(
        self, piece: str, plan: list[Planned], used: list[Template], plain: bool
    ) -> Template | None:
        """Queue one row for its template's batch (or for the exact reader); return the template."""
        head, _, body = piece.partition(">")
        at = head.find(' r="')  # where every writer puts it; other spellings take the regex
        digits = head[at + 4 : head.find('"', at + 4)] if at >= 0 else ""
        if at < 0 and (found := _ROW_NUMBER.search(head)):
            digits = found[1]
        if digits.isdecimal():
            row_no = self._row_no = int(digits)
        else:
            row_no = self._row_no = self._row_no + 1
            digits = str(row_no)
        if head[-1:] == "/":
            return None  # <row .../>: no cells
        if body.count("<") > 8 * MAX_COLUMNS:  # more markup than a full row: expat reads it, depth-bounded
            plan.append((row_no, None, 0, digits, piece))
            return None
        tokens = body.split("<")
        fit: Template | None = None
        values = None
        for known in self._templates.get(len(tokens), ()):
            values = row_values(known, tokens, digits, plain)
            if values is not None:
                fit = known
                break
        else:
            fit, values = self._new_template(tokens, digits, plain)
        if fit is None or values is None:
            plan.append((row_no, None, 0, digits, piece))
            return None
        batch = fit.batch
        if not batch:
            used.append(fit)
        plan.append((row_no, fit, len(batch), digits, piece))
        batch += values
        return fit

    def _read_run(self, t: Template, pieces: list[str], plain: bool) -> list[Row | BadRow] | None:
        """Rows that all fit t, checked and read a column at a time; None if any does not fit."""
        found = run_values(t, pieces, plain)
        if found is None:
            return None
        digits, values = found
        n = len(pieces)
        numbers = list(map(int, digits))
        if t.errors:
            self._row_no = numbers[-1]
            k, ref = t.errors[0]
            return [
                BadRow(r, f"cell {ref}{d} holds the error {v.strip()}")
                for r, d, v in zip(numbers, digits, values[k], strict=True)
            ]
        if not t.slots:
            self._row_no = numbers[-1]
            return []  # rows of empty (styled) cells
        try:
            for kind, slots in t.columns.items():
                if kind != "e":
                    for k in slots:
                        values[k] = self._columns.convert(kind, values[k])
        except CONVERSION_ERRORS:
            return None  # row by row, the exact reader gives the precise answer
        self._row_no = numbers[-1]
        rows = list(
            map(
                list,
                zip(*(repeat(None, n) if k is None else values[k] for k in t.slots), strict=True),
            )
        )
        if any("" in values[k] for k in t.slots if k is not None):  # empty shared strings
            rows = [_trimmed(row) for row in rows]
            return [(r, row) for r, row in zip(numbers, rows, strict=True) if row]
        return list(zip(numbers, rows, strict=True))

    def _new_template(
        self, tokens: list[str], row_str: str, plain: bool
    ) -> tuple[Template | None, list[Any] | None]:
        """A template learned from this row, kept for the rows after it, and the row's values;
        (None, None) to read the row exactly (always so when not fast)."""
        trying = self._fast and (self._misses < _GIVE_UP or self._misses % _RETRY == 0)
        learned = learn_template(tokens, row_str, self._date_styles) if trying else None
        values = None if learned is None else row_values(learned, tokens, row_str, plain)
        if learned is None or values is None:
            self._misses += 1
            return None, None
        self._misses = 0
        shapes = self._templates.setdefault(len(tokens), [])
        shapes.insert(0, learned)
        del shapes[_TEMPLATES_PER_SHAPE:]
        return learned, values

    def _read_exactly(self, xml: str, row_no: int) -> None:
        """Read sheetData content (a row, as a rule) with expat callbacks, onto self.out."""
        if self._exact is None:
            self._exact = ExactRows(self._strings, self._date_styles, self._date1904, self.out)
        self._exact.feed(xml, row_no)


def _trimmed(row: list[str | None]) -> list[str | None]:
    """Empty strings as None, trailing empty cells dropped."""
    row = [c or None for c in row]
    while row and row[-1] is None:
        row.pop()
    return row
