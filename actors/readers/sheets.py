"""What the XLSX and XLS readers share above the cell: a row's type, the sheet a name picks, the first row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from actors.readers.errors import BadRow, ReaderError

Row = tuple[int, list[str | None]]  # (sheet row number, cells: None for an empty one)


def named_sheet(names: Sequence[str], sheet: str) -> int:
    """The index of the sheet named so (exactly, else ignoring case and surrounding spaces)."""
    if sheet in names:
        return list(names).index(sheet)
    folded = sheet.strip().casefold()
    for index, name in enumerate(names):
        if name.strip().casefold() == folded:
            return index
    listed = ", ".join(repr(name) for name in names)
    raise ReaderError(f"workbook has no sheet named {sheet!r}; its sheets are {listed}")


def first_row(name: str, rows: Iterable[Row | BadRow]) -> tuple[str | None, ...]:
    """The sheet's first non-blank row; ReaderError when it is unreadable or there is none."""
    for item in rows:
        if isinstance(item, BadRow):
            raise ReaderError(
                f"sheet {name!r}, row {item.line}: cannot read the first row: {item.message}"
            )
        return tuple(item[1])
    raise ReaderError(f"sheet {name!r} has no rows (it is blank)")
