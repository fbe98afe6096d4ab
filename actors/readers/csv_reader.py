"""CSV: resolve the encoding and separator from a small sample, then stream records in bounded memory."""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections import Counter
from collections.abc import Generator
from contextlib import closing
from itertools import chain, islice
from typing import Any

from actors.readers.errors import BadRow, ReaderError

# Excel caps a cell at 32767 characters, so 1 MiB per field is generous for real data while a
# quote that never closes stops growing there instead of swallowing the rest of the file.
FIELD_LIMIT = 1 << 20
# The field limit alone does not bound a row of many fields or a quoted record spanning many
# lines; no record (all its lines) may exceed this many characters either.
RECORD_LIMIT = 4 << 20
BLOCK = 1 << 16  # characters decoded at a time; csv pulls the lines of a block at C speed
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
    with closing(read_csv(path, sep, enc, given_encoding=encoding)) as rows:
        for item in rows:
            if isinstance(item, BadRow):
                raise ReaderError(f"line {item.line}: cannot read the first row: {item.message}")
            return sep, enc, tuple(item[1])
    raise ReaderError("file has no rows (it is blank)")


def read_csv(
    path: str | os.PathLike[str],
    separator: str,
    encoding: str,
    *,
    given_encoding: str | None = None,
) -> Generator[tuple[int, list[str]] | BadRow, None, None]:
    """Stream (line, cells) per non-blank record, BadRow per unreadable one."""
    csv.field_size_limit(FIELD_LIMIT)  # process-wide: set on every read in case someone changed it
    with open(path, "rb") as raw:
        blocks = _Blocks(io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline=""))
        reader = _reader(blocks, separator)
        offset = end = 0  # lines before this reader's first; the last line of the last record
        while True:
            try:
                for row in reader:
                    start, end = end + 1, offset + reader.line_num
                    blocks.start = end + 1
                    if blocks.eof:  # csv only asks past the end while inside an open quote
                        raise ReaderError(
                            f'line {start}: a quote (") opened in this record never closes'
                        )
                    if blocks.nul and "\x00" in "".join(row):
                        yield BadRow(start, "contains a NUL byte")
                    elif any(row):
                        yield start, row
                return
            except UnicodeError:  # UTF-16/32 raise the base class for a missing BOM
                raise ReaderError(_decode_message(path, encoding, given_encoding)) from None
            except _RecordTooLong as exc:
                if exc.line > end + 1:
                    raise ReaderError(
                        f"line {end + 1}: a record runs past {RECORD_LIMIT} characters by line "
                        f'{exc.line}; a quote (") probably never closes'
                    ) from None
                yield BadRow(exc.line, f"row is longer than {RECORD_LIMIT} characters")
                end = offset = blocks.lines  # the source failed, so csv needs a new reader
                blocks.start = end + 1
                reader = _reader(blocks, separator)
            except csv.Error as exc:
                now = offset + reader.line_num
                if "field limit" not in str(exc):
                    yield BadRow(end + 1, f"cannot be read as CSV ({exc})")
                elif now > end + 1:
                    raise ReaderError(
                        f"line {end + 1}: a quoted field runs past {FIELD_LIMIT} characters; "
                        'a quote (") probably never closes'
                    ) from None
                else:
                    yield BadRow(end + 1, f"row has a field longer than {FIELD_LIMIT} characters")
                end = now  # csv dropped the rest of that line and starts afresh on the next
                blocks.start = end + 1


def _reader(blocks: _Blocks, separator: str) -> Any:
    """A csv reader over the blocks' lines (csv's reader type is private, hence Any)."""
    lines = chain.from_iterable(blocks)
    return csv.reader(lines, delimiter=separator, quotechar='"', doublequote=True, strict=False)


class _RecordTooLong(Exception):
    """Raised by the block source when a line or a record outgrows RECORD_LIMIT."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Blocks:
    """The decoded text as blocks of whole lines, each a StringIO that csv iterates at C speed
    (a Python call per block, not per line), and the bounds on what one record may take."""

    __slots__ = ("_carry", "_read", "_readline", "_seen", "_taken", "eof", "lines", "nul", "start")

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._read = text.read
        self._readline = text.readline
        self._carry = ""  # the start of a line whose end is not read yet
        self._seen = 0  # the record _taken counts for
        self._taken = 0  # characters handed over since that record began, a block at a time
        self.start = 1  # the first line of the record csv is in (read_csv keeps it current)
        self.lines = 0  # physical lines handed over
        self.nul = False  # some line held a NUL
        self.eof = False

    def __iter__(self) -> _Blocks:
        return self

    def __next__(self) -> io.StringIO:
        if self.start != self._seen:
            self._seen, self._taken = self.start, 0
        while True:
            chunk = self._read(BLOCK)
            text = self._carry + chunk
            if not chunk:
                if not text:
                    self.eof = True
                    raise StopIteration
                self._carry = ""
                return self._hand(text)
            # Up to the last line end; a final \r waits, as a \n may follow it in the next chunk.
            cut = max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1)) + 1
            self._carry = text[cut:]
            if cut:
                return self._hand(text[:cut])
            if len(text) > RECORD_LIMIT:
                self._skip_line()
                raise _RecordTooLong(self.lines)

    def _hand(self, text: str) -> io.StringIO:
        """Count and check the lines in text, and give them to csv."""
        self.lines += text.count("\n") + text.count("\r") - text.count("\r\n")
        if text[-1] not in "\r\n":
            self.lines += 1  # the file's last line, without a line end
        if "\x00" in text:
            self.nul = True
        self._taken += len(text)
        if self._taken > RECORD_LIMIT + BLOCK:  # one record pulled this many blocks: a runaway
            raise _RecordTooLong(self.lines)
        return io.StringIO(text, newline="")

    def _skip_line(self) -> None:
        """Drop an over-long line: the carry holds its start and no line end."""
        ended = self._carry.endswith("\r")
        self._carry = ""
        if ended:
            if (after := self._read(1)) != "\n":
                self._carry = after
        else:
            while (piece := self._readline(BLOCK)) and piece[-1] not in "\r\n":
                pass
        self.lines += 1


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
    name = text_codec(given)
    # A BOM in a file of the named family is a mark, not data: read with the codec that drops it.
    if bom == "utf-8-sig" and name == "utf-8":
        return bom
    if bom in ("utf-16", "utf-32") and name.startswith(bom):
        return bom
    return name


def text_codec(given: str) -> str:
    """The codec a caller's encoding name stands for; ReaderError when it is no text encoding."""
    try:
        name = codecs.lookup(given).name
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # refuses bytes-to-bytes codecs like "hex"
    except LookupError:
        raise ReaderError(
            f"unknown text encoding {given!r}; use a name such as utf-8, latin-1, cp1252 or utf-16"
        ) from None
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
    if len(sep) != 1 or sep in '"\r\n\x00':
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
    if encoding in ("utf-16", "utf-32"):
        with open(path, "rb") as raw:
            head = raw.read(4)
        if not any(head.startswith(mark) for mark, name in _BOMS if name == encoding):
            return (
                f"file does not start with a {encoding.upper()} byte-order mark; "
                f"pass encoding={encoding}-le or {encoding}-be"
            )
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


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: the first bad byte b as the lone surrogate U+DC00+b.

    No strict decoder of ours yields a lone surrogate, so the mark is unambiguous, and the text
    before it was decoded by the codec's own state (a UTF-16 file's byte order included).
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    byte = exc.object[exc.start] if exc.start < len(exc.object) else 0
    return chr(0xDC00 + byte), exc.end


codecs.register_error("importer-mark", _mark_undecodable)
_MARKED = re.compile("[\udc00-\udcff]")


def _locate_decode_error(path: str | os.PathLike[str], encoding: str) -> tuple[int, int]:
    """(line, byte value) of the first decoding error, counting \\n, \\r and \\r\\n as one break."""
    decoder = codecs.getincrementaldecoder(encoding)("importer-mark")
    breaks = 0
    last = ""
    with open(path, "rb") as raw:
        while True:
            chunk = raw.read(1 << 16)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeError:  # no position given (UTF-16 without BOM): blame the chunk's start
                return breaks + 1, chunk[0] if chunk else 0
            if (bad := _MARKED.search(text)) is not None:
                before = text[: bad.start()]
                return breaks + _count_breaks(last + before) - _count_breaks(last) + 1, ord(bad.group()) - 0xDC00
            breaks += _count_breaks(last + text) - _count_breaks(last)
            last = text[-1:] or last
            if not chunk:
                return breaks + 1, 0  # nothing undecodable after all


def _count_breaks(text: str) -> int:
    """Line breaks in text, a \\r\\n pair counted once."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")
