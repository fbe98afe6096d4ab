"""An open XLSX workbook: its parts found through the relationships, its sheets, date styles and rows."""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from typing import NamedTuple

from actors.readers.cells import DATE_FORMATS_BUILTIN, is_date_code
from actors.readers.errors import BadRow, ReaderError
from actors.readers.sheets import Row, named_sheet
from actors.readers.xlsx.archive import Archive, translate
from actors.readers.xlsx.markup import parse_part
from actors.readers.xlsx.sheet import SheetReader
from actors.readers.xlsx.strings import SharedStrings


class Sheet(NamedTuple):
    """One sheet as the workbook part lists it, in tab order."""

    name: str
    part: str
    kind: str  # "worksheet", "chartsheet", ... ("" when the relationship is missing)
    visible: bool


class Book(NamedTuple):
    """What the workbook part and its relationships say: sheets, date system, shared parts."""

    sheets: list[Sheet]
    date1904: bool
    strings: str | None
    styles: str | None


class Workbook:
    """An open workbook: its archive and its metadata."""

    def __init__(self, path: str, budget: int) -> None:
        self.archive = Archive(path, budget)
        try:
            self.book = read_book(self.archive)
        except Exception as exc:
            self.archive.close()
            raise translate(exc) from exc

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def pick(self, sheet: str | None) -> tuple[str, str]:
        """(name, part) of the named sheet, else of the first visible worksheet."""
        sheets = self.book.sheets
        if sheet is None:
            for found in sheets:
                if found.kind == "worksheet" and found.visible:
                    return found.name, found.part
            raise ReaderError("workbook has no visible worksheet")
        found = sheets[named_sheet([s.name for s in sheets], sheet)]
        if found.kind != "worksheet":
            raise ReaderError(
                f"sheet {found.name!r} is a {found.kind or 'part of unknown kind'}, not a worksheet"
            )
        return found.name, found.part

    def rows(self, part: str, fast: bool = True) -> Generator[Row | BadRow, None, None]:
        """The worksheet's rows, with archive and XML failures turned into ReaderError."""
        archive, book = self.archive, self.book
        strings: SharedStrings | None = None
        try:
            styles = date_styles(archive, book.styles)
            strings = SharedStrings(archive.open(book.strings) if book.strings else None, fast)
            reader = SheetReader(archive.open(part), strings, styles, book.date1904, fast)
            yield from reader.rows()
        except Exception as exc:
            raise translate(exc) from exc
        finally:
            if strings is not None:
                strings.close()  # the table can be tens of MB: freed now, not at the next full collection


def read_book(archive: Archive) -> Book:
    """Find the workbook part through the package relationships and read its metadata."""
    main = next(
        (t for typ, t in relationships(archive, "").values() if typ.endswith("/officeDocument")),
        "xl/workbook.xml",
    )
    if not archive.has(main):
        if archive.has("xl/workbook.bin"):
            raise ReaderError("binary XLSB workbooks are not supported; save it as XLSX")
        raise ReaderError("zip archive is not an XLSX workbook")
    rels = relationships(archive, main)
    root: list[str] = []
    found: list[tuple[str, str, str]] = []
    date1904 = [False]

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        if not root:
            root.append(local)
        if local == "sheet":
            rid = next((v for k, v in attrs.items() if k.endswith("}id")), "")
            found.append((attrs.get("name", ""), rid, attrs.get("state", "visible")))
        elif local == "workbookPr":
            date1904[0] = attrs.get("date1904", "").lower() in ("1", "true")

    parse_part(archive.open(main), start)
    if root != ["workbook"]:
        raise ReaderError("zip archive is not an XLSX workbook")
    sheets = []
    for name, rid, state in found:
        typ, target = rels.get(rid, ("", ""))
        sheets.append(Sheet(name, target, typ.rpartition("/")[2], state == "visible"))
    by_type = {typ.rpartition("/")[2]: target for typ, target in rels.values()}
    return Book(sheets, date1904[0], by_type.get("sharedStrings"), by_type.get("styles"))


def relationships(archive: Archive, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id -> (type, target part path); none when it has no .rels."""
    base = posixpath.dirname(part)
    name = posixpath.join(base, "_rels", posixpath.basename(part) + ".rels")
    if not archive.has(name):
        return {}
    found: dict[str, tuple[str, str]] = {}

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.endswith("Relationship") and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            path = (
                target[1:]
                if target.startswith("/")
                else posixpath.normpath(posixpath.join(base, target))
            )
            found[attrs.get("Id", "")] = (attrs.get("Type", ""), path)

    parse_part(archive.open(name), start)
    return found


def date_styles(archive: Archive, part: str | None) -> frozenset[str]:
    """The cell style indices (as written in c/@s) whose number format shows a date or time."""
    if part is None or not archive.has(part):
        return frozenset()
    codes: dict[str, str] = {}
    formats: list[str] = []
    inside = [0]  # cellStyleXfs holds xf elements too, but c/@s indexes only those in cellXfs

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        if local == "numFmt":
            codes[attrs.get("numFmtId", "")] = attrs.get("formatCode", "")
        elif local == "cellXfs":
            inside[0] += 1
        elif local == "xf" and inside[0]:
            formats.append(attrs.get("numFmtId", "0"))

    def end(name: str) -> None:
        if name.rpartition("}")[2] == "cellXfs":
            inside[0] -= 1

    parse_part(archive.open(part), start, end)
    return frozenset(
        str(i)
        for i, fid in enumerate(formats)
        if (is_date_code(codes[fid]) if fid in codes else fid in DATE_FORMATS_BUILTIN)
    )
