"""CSV: resolve the encoding and separator from a small sample, then stream records in bounded memory."""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import Counter
from collections.abc import Iterator
from itertools import islice

from actors.readers.errors import BadRow, ReaderError

# Excel caps a cell at 32767 characters, so 1 MiB per field is generous for real data while a
# quote that never closes stops growing there instead of swallowing the rest of the file.
FIELD_LIMIT = 1 << 20
# The field limit alone does not bound a row of many fields or a quoted record spanning many
# lines; no record (all its lines) may exceed this many characters either.
RECORD_LIMIT = 4 << 20
SEPARATORS = (",", "\t", ";", "|")
SNIFF_ROWS = 200

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts with UTF-16-LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_CONTROL = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20)) + b"\x7f"


class _RecordTooLong(Exception):
    """Raised by the line source when a record outgrows RECORD_LIMIT."""


def inspect_csv(
    path: str | os.PathLike[str],
    head: bytes,
    complete: bool,
    separator: str | None,
    encoding: str | None,
) -> tuple[str, str, tuple[str, ...]]:
    """Resolve (separator, encoding, first non-blank row) from the file's first bytes."""
    enc = _resolve_encoding(head, encoding)
    if not enc.startswith(("utf-16", "utf-32")) and _looks_binary(head):
        raise ReaderError("not a CSV, XLSX or XLS file (it holds binary data)")
    try:
        text = codecs.getincrementaldecoder(enc)("strict").decode(head, final=complete)
    except UnicodeError:  # UTF-16/32 raise the base class for a missing BOM
        raise ReaderError(_decode_message(path, enc, encoding)) from None
    sep = _resolve_separator(separator) if separator else _sniff_separator(text, complete)
    for item in read_csv(path, sep, enc, given_encoding=encoding):
        if isinstance(item, BadRow):
            raise ReaderError(f"line {item.line}: the first row {item.message}")
        return sep, enc, tuple(item[1])
    raise ReaderError("file has no rows (it is blank)")


def read_csv(
    path: str | os.PathLike[str],
    separator: str,
    encoding: str,
    *,
    given_encoding: str | None = None,
) -> Iterator[tuple[int, list[str]] | BadRow]:
    """Stream (line, cells) per non-blank record, BadRow per unreadable one."""
    csv.field_size_limit(FIELD_LIMIT)  # process-wide: set on every read in case someone changed it
    with open(path, "rb") as raw:
        src = _Lines(io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline=""))
        reader = csv.reader(src, delimiter=separator, quotechar='"', doublequote=True, strict=False)
        while True:
            start = src.lines + 1
            src.record_chars = 0
            src.nul = False
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeError:
                raise ReaderError(_decode_message(path, encoding, given_encoding)) from None
            except _RecordTooLong:
                if src.lines > start:
                    raise ReaderError(
                        f"line {start}: a record runs past {RECORD_LIMIT} characters over "
                        f'{src.lines - start + 1} lines; a quote (") probably never closes'
                    ) from None
                yield BadRow(start, f"row is longer than {RECORD_LIMIT} characters")
                continue
            except csv.Error as exc:
                if "field limit" not in str(exc):
                    yield BadRow(start, f"cannot be read as CSV ({exc})")
                elif src.lines > start:
                    raise ReaderError(
                        f"line {start}: a quoted field runs past {FIELD_LIMIT} characters; "
                        'a quote (") probably never closes'
                    ) from None
                else:
                    yield BadRow(start, f"row has a field longer than {FIELD_LIMIT} characters")
                continue
            if src.eof:  # csv only asks past the end while inside an open quote
                raise ReaderError(f'line {start}: a quote (") opened in this record never closes')
            if src.nul:
                yield BadRow(start, "contains a NUL byte")
            elif any(row):
                yield start, row


class _Lines:
    """The physical lines of a text stream, each read with a cap so no line can exhaust memory."""

    __slots__ = ("_readline", "eof", "lines", "nul", "record_chars")

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._readline = text.readline
        self.lines = 0
        self.record_chars = 0
        self.nul = False
        self.eof = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._readline(RECORD_LIMIT + 1 - self.record_chars)
        if not line:
            self.eof = True
            raise StopIteration
        self.lines += 1
        self.record_chars += len(line)
        if self.record_chars > RECORD_LIMIT:
            while line and line[-1] not in "\r\n":  # drop the rest of the line, a chunk at a time
                line = self._readline(1 << 16)
            raise _RecordTooLong
        if "\x00" in line:
            self.nul = True
        return line


def _resolve_encoding(head: bytes, given: str | None) -> str:
    """The codec to read with: the given one, else the BOM's, else UTF-8 (never a silent guess)."""
    bom = next((name for mark, name in _BOMS if head.startswith(mark)), None)
    if given is None:
        if bom:
            return bom
        if _looks_utf16(head):
            raise ReaderError(
                "file looks like UTF-16 without a byte-order mark; pass encoding=utf-16-le (or utf-16-be)"
            )
        return "utf-8"
    try:
        name = codecs.lookup(given).name
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # refuses bytes-to-bytes codecs like "hex"
    except LookupError:
        raise ReaderError(
            f"unknown text encoding {given!r}; use a name such as utf-8 or cp1252"
        ) from None
    # A BOM in a file of the named family is a mark, not data: read with the codec that drops it.
    if bom == "utf-8-sig" and name == "utf-8":
        return bom
    if bom in ("utf-16", "utf-32") and name.startswith(bom):
        return bom
    return name


def _looks_utf16(head: bytes) -> bool:
    """True when every other byte is mostly NUL, the mark of BOM-less UTF-16 text."""
    sample = head[: 4096 & ~1]
    if len(sample) < 8:
        return False
    half = len(sample) // 2
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.4 * half


def _looks_binary(head: bytes) -> bool:
    """True when control bytes are too common for text (a stray NUL row is still text)."""
    controls = len(head) - len(head.translate(None, _CONTROL))
    return controls > max(8, len(head) // 20)


def _resolve_separator(separator: str) -> str:
    """A given separator, by character or by name."""
    sep = _SEPARATOR_NAMES.get(separator.lower(), separator)
    if len(sep) != 1 or sep in '"\r\n':
        raise ReaderError(f"separator {separator!r} is not a single character such as , ; | or tab")
    return sep


def _sniff_separator(text: str, complete: bool) -> str:
    """The candidate that splits the sample's rows most consistently into 2+ columns, else ','."""
    if not complete:  # the sample's last line is probably cut short
        text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1] or text
    best: tuple[float, int, str] = (0.0, 0, ",")
    for sep in SEPARATORS:
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=False)
            widths = Counter(len(r) for r in islice(reader, SNIFF_ROWS) if any(r))
        except csv.Error:
            continue
        if not widths:
            continue
        width, hits = widths.most_common(1)[0]
        score = (hits / widths.total(), width)
        if width > 1 and score > best[:2]:
            best = (*score, sep)
    return best[2]


def _decode_message(path: str | os.PathLike[str], encoding: str, given: str | None) -> str:
    """Say where the first undecodable byte is, by re-reading the file as a stream."""
    line, byte = _locate_decode_error(path, encoding)
    if given is None and encoding in ("utf-8", "utf-8-sig"):
        return (
            f"file is not valid UTF-8 (byte 0x{byte:02x} at line {line}); "
            "re-save it as UTF-8 or pass encoding=cp1252 (or the encoding it was saved in)"
        )
    return (
        f"file is not valid {encoding} (byte 0x{byte:02x} at line {line}); "
        "re-save it as UTF-8 or pass the encoding it was saved in"
    )


def _locate_decode_error(path: str | os.PathLike[str], encoding: str) -> tuple[int, int]:
    """(line, byte value) of the first decoding error, counting \\n, \\r and \\r\\n as one break."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    breaks = 0
    last = ""
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 16):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                text = codecs.decode(exc.object[: exc.start], encoding, "replace")
                breaks += _count_breaks(last + text) - _count_breaks(last)
                return breaks + 1, exc.object[exc.start]
            except UnicodeError:  # no position given (UTF-16 without BOM): blame the chunk's start
                return breaks + 1, chunk[0]
            breaks += _count_breaks(last + text) - _count_breaks(last)
            last = text[-1:]
    return breaks + 1, 0  # cut short inside a character: the error is at the very end


def _count_breaks(text: str) -> int:
    """Line breaks in text, a \\r\\n pair counted once."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")
