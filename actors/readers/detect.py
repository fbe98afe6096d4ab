"""Which format a file is, judged by its content (never its name), and the two entry points."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Literal

import msgspec

from actors.readers.csv_reader import inspect_csv, read_csv
from actors.readers.errors import BadRow, ReaderError
from actors.readers.xls_reader import inspect_xls, open_xls, read_xls
from actors.readers.xlsx import inspect_xlsx, read_xlsx

FileFormat = Literal["csv", "xlsx", "xls"]
SAMPLE_BYTES = 64 * 1024  # what inspect_file reads of a CSV to settle encoding and separator

_ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC = (
    (b"%PDF-", "a PDF"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"{\\rtf", "an RTF document"),
)
_HTML = (b"<!doctype html", b"<html", b"<head", b"<body", b"<table", b"<meta")


class FileInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What inspect_file settled about a file: enough for read_rows to read it."""

    format: FileFormat
    separator: str | None = None  # csv only: the resolved separator
    encoding: str | None = None  # csv only: the resolved codec name, e.g. "utf-8-sig"
    sheet: str | None = None  # xlsx/xls: the resolved sheet name
    first_row: tuple[str | None, ...] = ()  # the first non-blank row, normalised like any row


def inspect_file(
    path: str | os.PathLike[str],
    *,
    separator: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    max_unpacked_bytes: int = 1 << 30,
) -> FileInfo:
    """Detect the format by content and settle separator, encoding and sheet, reading little."""
    with open(path, "rb") as raw:
        head = raw.read(SAMPLE_BYTES)
        complete = len(head) < SAMPLE_BYTES or not raw.read(1)
    fmt = _format(head)
    if fmt == "xlsx":
        name, first = inspect_xlsx(os.fspath(path), sheet, max_unpacked_bytes)
        return FileInfo(format="xlsx", sheet=name, first_row=first)
    if fmt == "xls":
        name, first = inspect_xls(path, sheet)
        return FileInfo(format="xls", sheet=name, first_row=first)
    sep, enc, row = inspect_csv(path, head, complete, separator, encoding)
    return FileInfo(format="csv", separator=sep, encoding=enc, first_row=row)


def open_file(
    path: str | os.PathLike[str],
    *,
    separator: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    max_unpacked_bytes: int = 1 << 30,
) -> tuple[FileInfo, Generator[tuple[int, list[str | None]] | BadRow, None, None]]:
    """inspect_file, then read_rows, in one: an XLS's globals (its shared strings) are read once,
    not once for its first row and again for its rows. Close the rows when done with them."""
    with open(path, "rb") as raw:
        head = raw.read(8)
    if head.startswith(_OLE2):
        name, first, rows = open_xls(path, sheet)
        return FileInfo(format="xls", sheet=name, first_row=first), rows
    info = inspect_file(
        path, separator=separator, encoding=encoding, sheet=sheet, max_unpacked_bytes=max_unpacked_bytes
    )
    return info, _generator(read_rows(path, info, max_unpacked_bytes=max_unpacked_bytes))


def _generator(
    rows: Iterator[tuple[int, list[str | None]] | BadRow],
) -> Generator[tuple[int, list[str | None]] | BadRow, None, None]:
    """The rows as a generator, whose close() closes the reader."""
    yield from rows


def read_rows(
    path: str | os.PathLike[str],
    info: FileInfo,
    *,
    max_unpacked_bytes: int = 1 << 30,
    fast: bool = True,
) -> Iterator[tuple[int, list[str | None]] | BadRow]:
    """Stream the file's non-blank rows, the first included, as (line, cells) or BadRow.

    fast=False reads sheets by their reference path only (expat for XLSX, xlrd for XLS), which
    the fast paths are tested to agree with; CSV has one path.
    """
    if info.format == "xlsx":
        return read_xlsx(os.fspath(path), info.sheet, max_unpacked_bytes, fast=fast)
    if info.format == "xls":
        return read_xls(path, info.sheet, fast=fast)
    # list is invariant, so mypy cannot see that CSV's list[str] rows fit; they never hold None.
    return read_csv(path, info.separator or ",", info.encoding or "utf-8")  # type: ignore[return-value]


def _format(head: bytes) -> FileFormat:
    """The format the first bytes announce; ReaderError for anything that is no table at all."""
    if not head:
        raise ReaderError("file is empty")
    if head.startswith(_ZIP):
        return "xlsx"  # the archive itself decides whether it really is a workbook
    if head.startswith(_OLE2):
        return "xls"
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML):
        kind = "HTML; if a program exported it as .xls, open it in Excel and save it as XLSX"
    elif text.startswith(b"<?xml"):
        kind = "an XML document"
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            kind = "an Excel 2003 XML spreadsheet; save it as XLSX"
    if kind is not None:
        raise ReaderError(f"not a CSV, XLSX or XLS file (looks like {kind})")
    return "csv"
