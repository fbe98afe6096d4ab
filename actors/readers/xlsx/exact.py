"""The exact path: expat callbacks over one row's XML at a time, for any markup at all."""

from __future__ import annotations

from actors.readers.cells import date_text, iso_text, number_text
from actors.readers.errors import BadRow
from actors.readers.sheets import Row
from actors.readers.xlsx.markup import MAX_DEPTH, safe_parser, too_deep, unescape_ooxml
from actors.readers.xlsx.strings import SharedStrings

MAX_COLUMNS = 16384  # Excel's own limit (column XFD)
_SLICE = 1 << 18  # characters of a row handed to expat at once


class CellProblem(Exception):
    """A cell that makes its row a BadRow; the message follows 'cell A1 '."""


def column_index(letters: str) -> int:
    """Zero-based column of a reference's letters ('AB' -> 27); -1 when they are not letters."""
    col = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z" or col > MAX_COLUMNS:
            return -1
        col = col * 26 + ord(ch) - 64
    return col - 1


class ExactRows:
    """The general row reader: rows it reads are appended to `out` as they end."""

    def __init__(
        self,
        strings: SharedStrings,
        date_styles: frozenset[str],
        date1904: bool,
        out: list[Row | BadRow],
    ) -> None:
        self._strings = strings
        self._date_styles = date_styles
        self._date1904 = date1904
        self._out = out
        self._row_no = 0
        self._cells: list[str | None] = []
        self._text: list[str] = []
        self._cell: tuple[str | None, str | None, str | None] | None = None
        self._collect = self._in_is = self._phonetic = False
        self._col = 0
        self._bad: str | None = None
        self._depth = 0  # counted here, not by markup.bounded: this is the per-element hot path
        self._parser = safe_parser(namespaces=False)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._data
        self._parser.Parse("<sheetData>", False)

    def feed(self, xml: str, row_no: int) -> None:
        """Read complete elements of sheetData: one <row>, as a rule (a huge one in slices, so expat
        never buffers or encodes it whole: a hostile row is refused within its first slice)."""
        self._row_no = row_no
        if len(xml) <= _SLICE:
            self._parser.Parse(xml, False)
            return
        for at in range(0, len(xml), _SLICE):
            self._parser.Parse(xml[at : at + _SLICE], False)

    def cell_text(self, raw: str, typ: str | None, style: str | None) -> str | None:
        """One cell's value as text; raises CellProblem for error cells and dangling strings."""
        if typ is None or typ == "n":
            if style in self._date_styles:
                return date_text(raw, self._date1904)
            return number_text(raw)
        if typ == "s":
            try:
                text = self._strings.get(int(raw))  # int() as the batch path reads indices
            except ValueError:
                text = None
            if text is None:
                raise CellProblem("refers to a shared string that does not exist")
            return text
        if typ == "b":
            return "true" if raw.strip() in ("1", "true", "TRUE") else "false"
        if typ == "e":
            raise CellProblem(f"holds the error {raw.strip()}")
        if typ == "d":
            return iso_text(raw.strip())
        return unescape_ooxml(raw)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise too_deep()
        tag = name.rpartition(":")[2]
        if tag == "c":
            self._cell = (attrs.get("r"), attrs.get("t"), attrs.get("s"))
            self._text = []
            self._in_is = False
        elif tag == "v":
            self._collect = self._cell is not None
        elif tag == "t":
            self._collect = self._cell is not None and self._in_is and not self._phonetic
        elif tag == "is":
            self._in_is = True
        elif tag == "rPh":  # a phonetic guide is not part of the value
            self._phonetic = True
        elif tag == "row":
            self._cells = []
            self._col = 0
            self._bad = None

    def _end(self, name: str) -> None:
        self._depth -= 1
        tag = name.rpartition(":")[2]
        if tag in ("v", "t"):
            self._collect = False
        elif tag == "c":
            self._finish_cell()
        elif tag == "is":
            self._in_is = False
        elif tag == "rPh":
            self._phonetic = False
        elif tag == "row":
            if self._bad is not None:
                self._out.append(BadRow(self._row_no, self._bad))
            elif self._cells:
                self._out.append((self._row_no, self._cells))

    def _data(self, text: str) -> None:
        if self._collect:
            self._text.append(text)

    def _finish_cell(self) -> None:
        """Place the cell just read in its column, or note why its row is bad."""
        if self._cell is None:
            return
        ref, typ, style = self._cell
        self._cell = None
        at = self._col if ref is None else column_index(ref.rstrip("0123456789"))
        self._col = at + 1
        raw = "".join(self._text)
        if not raw:
            return
        try:
            text = self.cell_text(raw, typ, style)
        except CellProblem as problem:
            self._bad = self._bad or f"cell {ref or at + 1} {problem}"
            return
        if not text:
            return
        if not 0 <= at < MAX_COLUMNS:
            self._bad = (
                self._bad
                or f"cell reference {ref!r} is not within the sheet's {MAX_COLUMNS} columns"
            )
            return
        cells = self._cells
        if at >= len(cells):
            cells.extend([None] * (at - len(cells)))
            cells.append(text)
        else:
            cells[at] = text
