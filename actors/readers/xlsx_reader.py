"""XLSX: stream one worksheet's rows straight from the zip, inside an unpacking budget.

How, since pyexpat's per-element callbacks alone run at a fraction of python-calamine's speed:
the sheet XML is decoded a chunk at a time and cut at each <row. A row is split into tokens at
"<"; the first row of each shape teaches a template (which tokens hold values, which hold only
markup with the row number in cell references), and every later row with the same markup is
read through it: runs of alike rows a column at a time, with C-level slicing and joining, and
values converted in bulk. Any row the template path cannot vouch for (rich text, odd quoting,
comments, anything unknown) is parsed by expat callbacks instead, and the two paths are tested
to agree. No DTD is ever processed: one could only stand in a part's prolog, which is refused.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from datetime import datetime, time, timedelta
from functools import lru_cache
from itertools import groupby, repeat
from operator import add, itemgetter, mul
from typing import IO, Any, NamedTuple
from xml.parsers import expat

from actors.readers.errors import BadRow, ReaderError

MAX_RATIO = 200  # a part inflating more than this many times its packed size is a zip bomb
SST_TEXT_LIMIT = 256 << 20  # characters of shared strings held in memory, at most
ROW_XML_LIMIT = 32 << 20  # characters of XML one row (or one shared string) may span
MAX_COLUMNS = 16384  # Excel's own limit (column XFD)
MAX_DEPTH = 64  # element nesting in any part (real workbooks nest about 8); expat keeps every open element
CHUNK = 1 << 18  # bytes inflated per step: small enough to stay flat, big enough to batch rows
_RATIO_EXEMPT = 1 << 20  # parts this small cannot be bombs, whatever their ratio
_TEMPLATES_PER_SHAPE = 4  # templates kept per token count; more shapes than this just re-learn

Row = tuple[int, list[str | None]]
Picker = Callable[[Sequence[Any]], tuple[Any, ...]]


class _Book(NamedTuple):
    sheets: list[tuple[str, str, str, bool]]  # (name, part, kind, visible) in tab order
    date1904: bool
    strings: str | None
    styles: str | None


def inspect_xlsx(path: str, sheet: str | None, budget: int) -> tuple[str, tuple[str | None, ...]]:
    """Resolve the sheet and read its first non-blank row, inflating only what that needs."""
    with _Archive(path, budget) as book:
        name, part = book.pick(sheet)
        with closing(book.rows(part)) as rows:
            for item in rows:
                if isinstance(item, BadRow):
                    raise ReaderError(
                        f"sheet {name!r}, row {item.line}: cannot read the first row: {item.message}"
                    )
                return name, tuple(item[1])
    raise ReaderError(f"sheet {name!r} has no rows (it is blank)")


def read_xlsx(path: str, sheet: str | None, budget: int) -> Iterator[Row | BadRow]:
    """Stream the sheet's non-blank rows as (row number, cells); BadRow for rows with error cells."""
    with _Archive(path, budget) as book:
        yield from book.rows(book.pick(sheet)[1])


class _Archive:
    """An open workbook: its zip, its metadata, and the unpacked bytes spent so far."""

    def __init__(self, path: str, budget: int) -> None:
        self.limit = budget
        self.declared = 0
        self.used = 0
        self.zip: zipfile.ZipFile | None = None
        try:
            self.zip = zipfile.ZipFile(path)
            self.names = {n.lower(): n for n in self.zip.namelist()}
            self.book = self._book()
        except Exception as exc:
            self.close()
            raise _translate(exc) from exc

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def pick(self, sheet: str | None) -> tuple[str, str]:
        """(name, part) of the named sheet, else of the first visible worksheet."""
        sheets = self.book.sheets
        if sheet is None:
            for name, part, kind, visible in sheets:
                if kind == "worksheet" and visible:
                    return name, part
            raise ReaderError("workbook has no visible worksheet")
        folded = sheet.strip().casefold()
        wanted = [s for s in sheets if s[0] == sheet] or [
            s for s in sheets if s[0].strip().casefold() == folded
        ]
        if not wanted:
            listed = ", ".join(repr(s[0]) for s in sheets)
            raise ReaderError(f"workbook has no sheet named {sheet!r}; its sheets are {listed}")
        name, part, kind, _ = wanted[0]
        if kind != "worksheet":
            raise ReaderError(
                f"sheet {name!r} is a {kind or 'part of unknown kind'}, not a worksheet"
            )
        return name, part

    def rows(self, part: str) -> Generator[Row | BadRow, None, None]:
        """The worksheet's rows, with archive and XML failures turned into ReaderError."""
        try:
            styles = _date_styles(self, self.book.styles)
            strings = _Strings(self.open(self.book.strings) if self.book.strings else None)
            yield from _SheetReader(self.open(part), strings, styles, self.book.date1904).rows()
        except Exception as exc:
            raise _translate(exc) from exc

    def open(self, name: str) -> _Part:
        """Open a part after checking its declared size and ratio against the budget."""
        real = self.names.get(name.lower())
        if real is None or self.zip is None:
            raise ReaderError(f"corrupt or truncated workbook: its part {name} is missing")
        info = self.zip.getinfo(real)
        if info.flag_bits & 0x1:
            raise ReaderError("workbook is password-protected")
        self.declared += info.file_size
        bomb = info.file_size > _RATIO_EXEMPT and info.file_size > MAX_RATIO * info.compress_size
        if self.declared > self.limit or bomb:
            raise _too_large(self.limit)
        return _Part(self.zip.open(info), self)

    def _book(self) -> _Book:
        """Find the workbook part through the package relationships and read its metadata."""
        main = next(
            (t for typ, t in _rels(self, "").values() if typ.endswith("/officeDocument")),
            "xl/workbook.xml",
        )
        if main.lower() not in self.names:
            if "xl/workbook.bin" in self.names:
                raise ReaderError("binary XLSB workbooks are not supported; save it as XLSX")
            raise ReaderError("zip archive is not an XLSX workbook")
        rels = _rels(self, main)
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

        _parse(self.open(main), start)
        if root != ["workbook"]:
            raise ReaderError("zip archive is not an XLSX workbook")
        sheets = []
        for name, rid, state in found:
            typ, target = rels.get(rid, ("", ""))
            sheets.append((name, target, typ.rpartition("/")[2], state == "visible"))
        by_type = {typ.rpartition("/")[2]: target for typ, target in rels.values()}
        return _Book(sheets, date1904[0], by_type.get("sharedStrings"), by_type.get("styles"))


class _Part:
    """A part being inflated, charged to the archive's budget as the bytes come out."""

    def __init__(self, stream: IO[bytes], archive: _Archive) -> None:
        self.stream = stream
        self.archive = archive

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.archive.used += len(data)
        if self.archive.used > self.archive.limit:  # declared sizes can lie; this count cannot
            raise _too_large(self.archive.limit)
        return data


def _too_large(limit: int) -> ReaderError:
    return ReaderError(
        f"workbook is too large when unpacked (over {limit} bytes, or a part inflates more than "
        f"{MAX_RATIO} times); refused as a possible zip bomb"
    )


def _translate(exc: Exception) -> Exception:
    """Archive and XML failures as the caller's ReaderError; anything else is a bug, kept as is."""
    if isinstance(exc, ReaderError):
        return exc
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError)):
        return ReaderError(f"corrupt or truncated workbook: {exc}")
    if isinstance(exc, (expat.ExpatError, UnicodeDecodeError)):
        return ReaderError(f"corrupt workbook: malformed XML ({exc})")
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return ReaderError("workbook is password-protected")
    return exc


def _refuse_dtd(*_: object) -> None:
    raise ReaderError("workbook XML declares a DTD/entities; refused")


def _parser(namespaces: bool = True) -> Any:
    """An expat parser that refuses any DTD, so entities (billion laughs, external) never expand."""
    parser = expat.ParserCreate(namespace_separator="}") if namespaces else expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


def _too_deep() -> ReaderError:
    return ReaderError(f"workbook XML nests elements deeper than {MAX_DEPTH} levels; refused")


def _bounded(parser: Any, start: Any, end: Any = None) -> None:
    """Set element handlers that also refuse nesting past MAX_DEPTH (depth is memory to expat)."""
    depth = 0

    def on_start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        start(name, attrs)

    def on_end(name: str) -> None:
        nonlocal depth
        depth -= 1
        if end is not None:
            end(name)

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end


def _parse(part: _Part, start: Any, end: Any = None) -> None:
    """Feed a whole (small) part to a fresh parser with these element handlers."""
    parser = _parser()
    _bounded(parser, start, end)
    while chunk := part.read(CHUNK):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _rels(archive: _Archive, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id -> (type, target part path); none when it has no .rels."""
    base = posixpath.dirname(part)
    name = posixpath.join(base, "_rels", posixpath.basename(part) + ".rels")
    if name.lower() not in archive.names:
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

    _parse(archive.open(name), start)
    return found


def _date_styles(archive: _Archive, part: str | None) -> frozenset[str]:
    """The cell style indices (as written in c/@s) whose number format shows a date or time."""
    if part is None or part.lower() not in archive.names:
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

    _parse(archive.open(part), start, end)
    return frozenset(
        str(i)
        for i, fid in enumerate(formats)
        if (is_date_code(codes[fid]) if fid in codes else fid in DATE_FORMATS_BUILTIN)
    )


class _XmlText:
    """A part as decoded text, chunk by chunk, once its prolog has been checked for a DTD.

    No whole-part parse: every row is later either parsed by expat or matched token for token
    against a template learned from a row that passed strict checks. A DTD can only stand in
    the prolog, before the root element, so refusing one there refuses it in the whole part.
    """

    def __init__(self, part: _Part) -> None:
        self._part = part
        self._decode: Callable[[bytes, bool], str] | None = None
        self._prefix: str | None = None  # the root's namespace prefix, stripped from every tag
        self._head = ""
        self.done = False

    def read(self) -> str:
        chunk = self._part.read(CHUNK)
        if self._decode is None:
            self._decode = codecs.getincrementaldecoder(_xml_encoding(chunk))("strict").decode
        self.done = not chunk
        text = self._decode(chunk, self.done)
        if self._prefix is not None:
            return text
        self._head += text
        root = _prolog_end(self._head, self.done)
        if root < 0:
            if self.done or len(self._head) > ROW_XML_LIMIT:
                raise ReaderError("corrupt workbook: a part holds no XML element")
            return ""
        qname = _QNAME.match(self._head, root + 1)
        self._prefix = qname[1] or "" if qname else ""
        text, self._head = self._head, ""
        return text

    def normalise(self, text: str) -> tuple[str, str]:
        """(text ready to cut into elements, an unfinished comment/PI/CDATA to hold back)."""
        if self._prefix:
            text = text.replace(f"<{self._prefix}:", "<").replace(f"</{self._prefix}:", "</")
        if ("!" not in text and "?" not in text) or ("<!" not in text and "<?" not in text):
            return text, ""  # the first test is a fast memchr; most sheets pass it
        parts = []
        at = 0
        for m in _SPECIAL.finditer(text):
            parts.append(text[at : m.start()])
            if m[0] in ("<!--", "<?", "<![CDATA["):  # opened but not closed yet
                return "".join(parts), text[m.start() :]
            if m[1] is not None:  # CDATA: its text, escaped like any other text
                parts.append(m[1].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            at = m.end()
        parts.append(text[at:])
        return "".join(parts), ""


def _prolog_end(text: str, final: bool) -> int:
    """Where the root element starts in text; -1 while the prolog may go on. A DTD is refused."""
    at = text.find("<")
    while at >= 0 and (final or at < len(text) - 4):  # "<!--" must be whole to be told from "<!D"
        if text.startswith("<?", at):
            end = text.find("?>", at + 2)
            at = -1 if end < 0 else text.find("<", end + 2)
        elif text.startswith("<!--", at):
            end = text.find("-->", at + 4)
            at = -1 if end < 0 else text.find("<", end + 3)
        elif text.startswith("<!", at):  # <!DOCTYPE, or no XML at all: refused either way
            raise ReaderError("workbook XML declares a DTD/entities; refused")
        else:
            return at
    return -1


_QNAME = re.compile(r"(?:([A-Za-z_][\w.-]*):)?[A-Za-z_]")
_SPECIAL = re.compile(r"<!\[CDATA\[(.*?)\]\]>|<!--.*?-->|<\?.*?\?>|<!--|<\?|<!\[CDATA\[", re.S)
_DECLARED = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9A-Fa-f]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _xml_encoding(head: bytes) -> str:
    """The codec a part declares (BOM or XML declaration), UTF-8 by default."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    declared = _DECLARED.match(head)
    try:
        return codecs.lookup(declared[1].decode("ascii")).name if declared else "utf-8"
    except LookupError:
        return "utf-8"


def _entity(m: re.Match[str]) -> str:
    name = m[1]
    if name[0] != "#":
        return _NAMED[name]
    return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))


def _xml_text(raw: str) -> str:
    """Raw character data as an XML parser reports it: line ends normalised, references resolved."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return _ENTITY.sub(_entity, raw) if "&" in raw else raw


def _ooxml_char(m: re.Match[str]) -> str:
    code = int(m[1], 16)
    return m[0] if 0xD800 <= code <= 0xDFFF else chr(code)  # a lone surrogate could not be stored


def _unescape_ooxml(text: str) -> str:
    """Excel's _xHHHH_ escapes (characters XML cannot carry) back to the characters."""
    return _OOXML_ESCAPE.sub(_ooxml_char, text) if "_x" in text else text


class _CellProblem(Exception):
    """A cell that makes its row a BadRow; the message follows 'cell A1 '."""


class _Strings:
    """The shared-strings table, read only as far as the sheet has asked (sheets ask mostly in order)."""

    def __init__(self, part: _Part | None) -> None:
        self.items: list[str] = []
        self._text = _XmlText(part) if part is not None else None
        self._pending = ""
        self._chars = 0
        self._exact: Any = None  # an expat parser for entries the fast split cannot take

    def get(self, index: int) -> str | None:
        """Entry `index`, or None when the table has no such entry."""
        if index >= len(self.items):
            self.load(index)
        return self.items[index] if 0 <= index < len(self.items) else None

    def load(self, index: int) -> None:
        """Read on until entry `index` exists or the table ends."""
        text = self._text
        while text is not None and index >= len(self.items) and not text.done:
            ready, held = text.normalise(self._pending + text.read())
            start = ready.find("<si")
            close, empty = ready.rfind("</si>"), ready.rfind("<si/>")
            end = max(close + 5 if close >= 0 else -1, empty + 5 if empty >= 0 else -1)
            if start >= 0 and end > start:
                self._add(ready[start:end])
                ready = ready[end:]
            self._pending = ready + held
            if len(self._pending) > ROW_XML_LIMIT:
                raise ReaderError(
                    f"a shared string is longer than {ROW_XML_LIMIT} characters; refused"
                )

    def _add(self, xml: str) -> None:
        """Append the entries in xml (complete <si> elements): plain ones by one split, else by expat."""
        texts = _plain_entries(xml)
        if texts is not None:
            self._extend(texts)
            return
        if self._exact is None:
            self._exact = self._exact_parser()
        self._exact.Parse(xml, False)

    def _extend(self, texts: list[str]) -> None:
        self.items.extend(texts)
        self._chars += sum(map(len, texts))
        if self._chars > SST_TEXT_LIMIT:
            raise ReaderError(
                f"workbook's shared strings exceed {SST_TEXT_LIMIT} characters; refused"
            )

    def _exact_parser(self) -> Any:
        """Expat callbacks for rich text and phonetic runs: an entry is its runs' text, guides excluded."""
        parts: list[str] = []
        state = {"collect": False, "phonetic": False}

        def start(name: str, attrs: dict[str, str]) -> None:
            tag = name.rpartition(":")[2]
            if tag == "si":
                parts.clear()
            elif tag == "t":
                state["collect"] = not state["phonetic"]
            elif tag == "rPh":
                state["phonetic"] = True

        def end(name: str) -> None:
            tag = name.rpartition(":")[2]
            if tag == "t":
                state["collect"] = False
            elif tag == "rPh":
                state["phonetic"] = False
            elif tag == "si":
                self._extend([_unescape_ooxml("".join(parts))])

        def data(text: str) -> None:
            if state["collect"]:
                parts.append(text)

        parser = _parser(namespaces=False)
        _bounded(parser, start, end)
        parser.CharacterDataHandler = data
        parser.Parse("<sst>", False)
        return parser


def _plain_entries(xml: str) -> list[str] | None:
    """The texts of <si><t>text</t></si>... with nothing else in it, by one split; else None."""
    plain = xml.replace('<t xml:space="preserve">', "<t>") if "xml:space" in xml else xml
    count = plain.count("<si>")
    if not (
        plain.startswith("<si><t>")
        and plain.endswith("</t></si>")
        and plain.count("<") == 4 * count
    ):
        return None
    texts = plain[7:-9].split("</t></si><si><t>")
    if len(texts) != count:
        return None  # something (whitespace) between the entries
    if "&" in plain or "\r" in plain:
        texts = list(map(_xml_text, texts))
    return list(map(_unescape_ooxml, texts)) if "_x" in plain else texts


class _Template:
    """How to read any row whose markup matches one already read: only the row number inside the
    cell references and the text of the values may differ, so the values sit at fixed token
    positions. Rows sharing a template are converted together, a column at a time, in C loops."""

    __slots__ = (
        "skel",
        "refs",
        "keep",
        "values",
        "count",
        "inline",
        "formulas",
        "formula_count",
        "columns",
        "gather",
        "errors",
        "batch",
        "failed",
        "size",
        "first",
        "checks",
        "value_at",
        "formula_at",
        "slots",
    )

    def __init__(
        self,
        size: int,
        keep: list[int],
        kept: list[str],
        values: list[int],
        formulas: list[int],
        cells: list[tuple[int, str, str | None]],
        inline: bool,
    ) -> None:
        skel = "<".join(kept)
        self.skel = skel  # the kept tokens joined by "<", each reference's row number as \x00
        self.refs = "\x00" in skel
        self.keep = _picker(keep)
        self.values = _picker(values)
        self.count = len(values) + 1  # a row's slots: its values, then None for empty columns
        self.inline = inline  # some values sit in <t> (inline strings), not <v>
        self.formulas = _picker(formulas) if formulas else None
        self.formula_count = len(formulas)
        self.columns: dict[str, list[int]] = {}  # kind -> slots holding that kind
        for k, (_, kind, _) in enumerate(cells):
            self.columns.setdefault(kind, []).append(k)
        shown = [k for k, (_, kind, _) in enumerate(cells) if kind != "e"]
        slots = [len(cells)] * (max((cells[k][0] for k in shown), default=-1) + 1)
        for k in shown:
            slots[cells[k][0]] = k
        self.gather = _picker(slots)
        self.errors = [(k, cells[k][2]) for k in self.columns.get("e", [])]
        self.batch: list[Any] = []  # this chunk's rows, count slots each
        self.failed = False
        # For runs of rows read column-wise: tokens per row, then each kept token as text or,
        # holding the row number, as a %-format; value and formula token positions; and for
        # each output column the value slot it shows (None: empty).
        self.size = size
        self.first = kept[0]
        self.checks = [
            (q, *tok.partition("\x00")) for q, tok in zip(keep[1:], kept[1:], strict=True)
        ]
        self.value_at = values
        self.formula_at = formulas
        self.slots: list[int | None] = [None if k == len(cells) else k for k in slots]


def _picker(idx: list[int]) -> Picker:
    """itemgetter that always returns a tuple, even for one index or none."""
    if len(idx) > 1:
        return itemgetter(*idx)
    if idx:
        i = idx[0]
        return lambda seq: (seq[i],)
    return lambda seq: ()


# A cell's t= decides how its value converts; any other t= is plain text.
_KINDS = {"s": "s", "b": "b", "e": "e", "d": "iso"}
_BOOLS = {
    "1": "true",
    "0": "false",
    "true": "true",
    "false": "false",
    "TRUE": "true",
    "FALSE": "false",
}
_KEPT = frozenset(("/v", "/t", "/f", "/row", "/c", "f", "f/", "v/", "c", "c/", "is", "/is"))
_REF = re.compile(r'\sr="([^"]*)"')
_ATTR = re.compile(r'([\w:.-]+)="([^"]*)"')
_LEADING_ZERO = re.compile("\x000[0-9]")
_NOT_A_ROW = re.compile(r"<row[^\s/>]")
_ROW_NUMBER = re.compile(r'(?:^|\s)r\s*=\s*["\']([0-9]+)["\']')
_MIN_RUN = 8  # rows sharing a template before they are read column-wise
_ROW_R = re.compile('\x00 r="([0-9]+)"')  # row numbers, in a run's heads joined by \x00
_GIVE_UP = 64  # rows in a row no template fits: then try learning only every _RETRY rows
_RETRY = 1024


class _SheetReader:
    """A worksheet's rows: its XML cut at each <row, read by template where the markup repeats
    (the usual case: every row of a table looks alike) and by expat callbacks otherwise."""

    def __init__(
        self, part: _Part, strings: _Strings, date_styles: frozenset[str], date1904: bool
    ) -> None:
        self._text = _XmlText(part)
        self._strings = strings
        self._date_styles = date_styles
        self._date1904 = date1904
        self._templates: dict[int, list[_Template]] = {}
        self._misses = 0
        self._row_no = 0
        self._exact: _ExactRows | None = None
        self.out: list[Row | BadRow] = []
        self._converters: dict[str, Callable[[list[str]], list[str]]] = {
            "num": _numbers,
            "date": self.dates,
            "s": self.shared,
            "b": _booleans,
            "iso": _isos,
        }

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
                    self._cut(ready[:end])
                    yield from self.out
                    return  # nothing after sheetData is read
                cut = ready.rfind("<row")
                if cut > 0:
                    self._cut(ready[:cut])
                    ready = ready[cut:]
            pending = ready + held
            if len(pending) > ROW_XML_LIMIT:
                raise ReaderError(
                    f"sheet XML after row {self._row_no} holds a row larger than {ROW_XML_LIMIT} characters; refused"
                )
            if self.out:
                yield from self.out
                self.out.clear()

    def _cut(self, xml: str) -> None:
        """Read every row in xml, which holds whole <row> elements only."""
        if "\x00" in xml:  # never valid XML; the column-wise checks use it as their separator
            raise ReaderError("corrupt workbook: its sheet XML holds a NUL character")
        pieces = xml.split("<row")
        if _NOT_A_ROW.search(xml):  # "<rowFoo" is no row start: glue such pieces back on
            for i in range(len(pieces) - 1, 0, -1):
                if pieces[i][:1] not in " \t\r\n/>":
                    pieces[i - 1] += "<row" + pieces.pop(i)
        if pieces[0].strip():  # anything but rows in sheetData: let expat judge it
            self._exactly(pieces[0], self._row_no)
        # In order: single rows (number, template or None to read exactly, batch slot, digits,
        # XML), and runs already read column-wise.
        plan: list[tuple[int, _Template | None, int, str, str] | list[Row | BadRow]] = []
        used: list[_Template] = []
        plain = "&" not in xml and "\r" not in xml  # no references to resolve, no line ends to fold
        counts = list(map(str.count, pieces, repeat("<")))
        for _, run in groupby(range(1, len(pieces)), counts.__getitem__):
            first, *rest = run
            fit = self._one(pieces[first], plan, used, plain)
            if fit is not None and len(rest) >= _MIN_RUN:
                got = self._run(fit, pieces[rest[0] : rest[-1] + 1], plain)
                if got is not None:
                    plan.append(got)
                    continue
            for i in rest:
                self._one(pieces[i], plan, used, plain)
        for template in used:
            self._convert(template)
        out = self.out
        for entry in plan:
            if isinstance(entry, list):
                out.extend(entry)
                continue
            row_no, fit, slot, row_str, piece = entry
            if fit is None or fit.failed:
                self._exactly("<row" + piece, row_no)
            elif fit.errors:
                k, ref = fit.errors[0]
                error = fit.batch[slot + k].strip()
                out.append(BadRow(row_no, f"cell {ref}{row_str} holds the error {error}"))
            else:
                row: list[str | None] = list(fit.gather(fit.batch[slot : slot + fit.count]))
                if "" in row:  # empty shared strings are blank cells
                    row = [c or None for c in row]
                    while row and row[-1] is None:
                        row.pop()
                if row:
                    out.append((row_no, row))
        for template in used:
            template.batch = []
            template.failed = False

    def _one(
        self, piece: str, plan: list[Any], used: list[_Template], plain: bool
    ) -> _Template | None:
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
        fit: _Template | None = None
        values = None
        for known in self._templates.get(len(tokens), ()):
            values = self._values(known, tokens, digits, plain)
            if values is not None:
                fit = known
                break
        else:
            fit, values = self._learned(tokens, digits, plain)
        if fit is None or values is None:
            plan.append((row_no, None, 0, digits, piece))
            return None
        batch = fit.batch
        if not batch:
            used.append(fit)
        plan.append((row_no, fit, len(batch), digits, piece))
        batch += values
        return fit

    def _run(self, t: _Template, pieces: list[str], plain: bool) -> list[Row | BadRow] | None:
        """Rows that all fit t, checked and read a column at a time; None if any does not fit."""
        n, size = len(pieces), t.size
        tokens = "<".join(pieces).split("<")
        if len(tokens) != n * size:
            return None
        heads = tokens[0::size]  # a row's attributes, ">" and any text before its first cell
        if (
            "".join(heads).count(">") != n
            or sum(map(str.endswith, heads, repeat(">" + t.first))) != n
        ):
            return None
        digits: list[str] = _ROW_R.findall("\x00" + "\x00".join(heads))
        if len(digits) != n:
            return None  # some row does not start with r="<number>"
        for q, before, numbered, after in t.checks:
            column = tokens[q::size]
            if numbered:  # each token is before + its row's number + after
                glue = after + "\x00" + before
                if "\x00".join(column) != before + glue.join(digits) + after:
                    return None
            elif column.count(before) != n:
                return None
        for q in t.formula_at:
            if ("<" + "<".join(tokens[q::size])).count("<f>") != n:
                return None
        values: list[list[Any]] = []
        for q in t.value_at:
            joined = "<" + "<".join(tokens[q::size])
            if t.inline:
                joined = joined.replace('<t xml:space="preserve">', "<v>").replace("<t>", "<v>")
            column = joined.split("<v>")
            if len(column) != n + 1 or column[0]:
                return None
            del column[0]
            if not plain and ("&" in joined or "\r" in joined):
                column = list(map(_xml_text, column))
            if "" in column:
                return None
            values.append(column)
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
                for k in slots:
                    if kind == "raw":
                        if "_x" in "".join(values[k]):
                            values[k] = list(map(_unescape_ooxml, values[k]))
                    elif kind != "e":
                        values[k] = self._converters[kind](values[k])
        except (ValueError, IndexError, OverflowError):
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

    def _learned(
        self, tokens: list[str], row_str: str, plain: bool
    ) -> tuple[_Template | None, list[Any] | None]:
        """A new template for this row and its values, or (None, None) to read it exactly."""
        trying = self._misses < _GIVE_UP or self._misses % _RETRY == 0
        learned = self._learn(tokens, row_str) if trying else None
        values = None if learned is None else self._values(learned, tokens, row_str, plain)
        if learned is None or values is None:
            self._misses += 1
            return None, None
        self._misses = 0
        shapes = self._templates.setdefault(len(tokens), [])
        shapes.insert(0, learned)
        del shapes[_TEMPLATES_PER_SHAPE:]
        return learned, values

    @staticmethod
    def _values(t: _Template, tokens: list[str], row_str: str, plain: bool) -> list[Any] | None:
        """The row's raw values, then None, if t fits the row; else None."""
        if (t.skel.replace("\x00", row_str) if t.refs else t.skel) != "<".join(t.keep(tokens)):
            return None
        joined = "<".join(t.values(tokens))
        if (
            t.formulas is not None
            and ("<" + "<".join(t.formulas(tokens))).count("<f>") != t.formula_count
        ):
            return None
        if t.count == 1:
            return [None]  # a row of empty (styled) cells
        if t.inline:
            joined = joined.replace('<t xml:space="preserve">', "<v>").replace("<t>", "<v>")
            if joined[:2] == "t>":
                joined = "v" + joined[1:]
            elif joined.startswith('t xml:space="preserve">'):
                joined = "v" + joined[22:]
        values: list[Any] = joined.split("<v>")
        if len(values) != t.count - 1 or values[0][:2] != "v>":
            return None
        values[0] = values[0][2:]
        if not plain and ("&" in joined or "\r" in joined):
            values = list(map(_xml_text, values))
        if "" in values:
            return None  # an empty value: the exact reader knows what that means
        values.append(None)
        return values

    def _convert(self, t: _Template) -> None:
        """Convert a template's batch in place, a column at a time; on any surprise mark it failed."""
        batch, step = t.batch, t.count
        try:
            for kind, slots in t.columns.items():
                for k in slots:
                    column = batch[k::step]
                    if kind == "raw":
                        if "_x" in "".join(column):
                            batch[k::step] = list(map(_unescape_ooxml, column))
                    elif kind != "e":
                        batch[k::step] = self._converters[kind](column)
        except (ValueError, IndexError, OverflowError):
            t.failed = True  # the exact reader gives each row the precise answer (or BadRow)

    def _learn(self, tokens: list[str], row_str: str) -> _Template | None:
        """A template from this row's markup, or None when it holds anything unusual."""
        if tokens[0].strip():
            return None
        keep, skel, values, formulas = [0], [tokens[0]], [], []
        cells: list[tuple[int, str, str | None]] = []
        cell: tuple[int, str, str | None] | None = None
        col, used, in_is, inline, has_value = 0, set(), False, False, False
        for i in range(1, len(tokens)):
            tok = tokens[i]
            markup, _, text = tok.partition(">")
            if markup.count('"') % 2 or "'" in markup or "&" in markup:
                return None
            if (
                cell is not None
                and not has_value
                and (markup == "v" or (in_is and markup in ("t", 't xml:space="preserve"')))
            ):
                values.append(i)
                cells.append(cell)
                has_value = True
                inline = inline or markup != "v"
                continue
            if markup == "f":
                formulas.append(i)  # the formula's text is not the value
                continue
            name = markup.split(None, 1)[0] if markup.strip() else ""
            if text.strip() or name not in _KEPT:
                return None  # text outside a value, or rich text, phonetics, extensions...
            if name in ("c", "c/"):
                pairs = _ATTR.findall(markup)
                if len(pairs) != markup.count("="):
                    return None  # spaces around "=", or "=" inside a value: expat's to judge
                attrs = dict(pairs)
                ref = attrs.get("r")
                letters = ""
                if ref is not None:
                    letters = ref.rstrip("0123456789")
                    found = _REF.search(markup)
                    if ref[len(letters) :] != row_str or found is None:
                        return None
                    col = _column(letters)
                    tok = tok[: found.start(1) + len(letters)] + "\x00" + tok[found.end(1) :]
                if not 0 <= col < MAX_COLUMNS or col in used:
                    return None
                used.add(col)
                typ = attrs.get("t")
                if typ is None or typ == "n":
                    kind = "date" if attrs.get("s") in self._date_styles else "num"
                else:
                    kind = _KINDS.get(typ, "raw")
                cell = (
                    None if name == "c/" or markup.endswith("/") else (col, kind, letters or None)
                )
                col += 1
                has_value = in_is = False
            elif name == "is":
                in_is = True
            elif name == "/is":
                in_is = False
            elif name == "/c":
                cell = None
            keep.append(i)
            skel.append(tok)
        if any(ref is None for _, kind, ref in cells if kind == "e"):
            return None  # messages name the cell; reference-less ones are the exact reader's
        return _Template(len(tokens), keep, skel, values, formulas, cells, inline)

    def _exactly(self, xml: str, row_no: int) -> None:
        """Read sheetData content (a row, as a rule) with expat callbacks."""
        if self._exact is None:
            self._exact = _ExactRows(self.cell_text, self.out)
        self._exact.feed(xml, row_no)

    def cell_text(self, raw: str, typ: str | None, style: str | None) -> str | None:
        """One cell's value as text; raises _CellProblem for error cells and dangling strings."""
        if typ is None or typ == "n":
            return (
                date_text(raw, self._date1904) if style in self._date_styles else number_text(raw)
            )
        if typ == "s":
            try:
                text = self._strings.get(int(raw))  # int() as the batch path reads indices
            except ValueError:
                text = None
            if text is None:
                raise _CellProblem("refers to a shared string that does not exist")
            return text
        if typ == "b":
            return "true" if raw.strip() in ("1", "true", "TRUE") else "false"
        if typ == "e":
            raise _CellProblem(f"holds the error {raw.strip()}")
        if typ == "d":
            return iso_text(raw.strip())
        return _unescape_ooxml(raw)

    def shared(self, raw: Sequence[str]) -> list[str]:
        """Shared-string indices to their entries (IndexError when any is missing)."""
        idx = list(map(int, raw))
        if min(idx) < 0:
            raise IndexError
        if max(idx) >= len(self._strings.items):
            self._strings.load(max(idx))
        return list(map(self._strings.items.__getitem__, idx))

    def dates(self, raw: Sequence[str]) -> list[str]:
        """date_text for a column, in C loops while every serial is a plain modern date."""
        floats = list(map(float, raw))
        if min(floats) < (1 if self._date1904 else 61) or max(floats) >= _MAX_SERIAL - 1:
            return [date_text(v, self._date1904) for v in raw]  # times of day, Excel's 1900 quirk
        ms = map(round, map(mul, floats, repeat(86_400_000)))  # Excel keeps milliseconds
        moments = map(
            add,
            repeat(_EPOCH_1904 if self._date1904 else _EPOCH_1900),
            map(timedelta, repeat(0), repeat(0), repeat(0), ms),
        )
        joined = "\x00".join(map(datetime.isoformat, moments)) + "\x00"
        return joined.replace("T00:00:00\x00", "\x00")[:-1].split("\x00")


def _trimmed(row: list[str | None]) -> list[str | None]:
    """Empty strings as None, trailing empty cells dropped."""
    row = [c or None for c in row]
    while row and row[-1] is None:
        row.pop()
    return row


def _numbers(raw: Sequence[str]) -> list[str]:
    """number_text for many cells at once: repr in C, then '.0' dropped from integral values."""
    digits = "".join(raw)
    if (
        digits.isascii()
        and digits.isdigit()
        and max(map(len, raw)) < 16
        and not _LEADING_ZERO.search("\x00" + "\x00".join(raw))
    ):
        return list(raw)  # plain integers are already canonical
    floats = list(map(float, raw))
    if max(map(abs, floats)) >= 2**53:
        return list(map(float_text, floats))
    joined = "\x00" + "\x00".join(map(repr, floats)) + "\x00"
    if "\x00-0.0\x00" in joined:
        return list(map(float_text, floats))
    return joined.replace(".0\x00", "\x00")[1:-1].split("\x00")


def _booleans(raw: Sequence[str]) -> list[str]:
    got = list(map(_BOOLS.get, raw))
    if None in got:
        raise ValueError("not a boolean")
    return got  # type: ignore[return-value]


def _isos(raw: Sequence[str]) -> list[str]:
    return [iso_text(v.strip()) for v in raw]


def _column(letters: str) -> int:
    """Zero-based column of a reference's letters ('AB' -> 27); -1 when they are not letters."""
    col = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z" or col > MAX_COLUMNS:
            return -1
        col = col * 26 + ord(ch) - 64
    return col - 1


class _ExactRows:
    """The general row reader: expat callbacks over one row's XML at a time, any markup at all."""

    def __init__(
        self,
        cell_text: Callable[[str, str | None, str | None], str | None],
        out: list[Row | BadRow],
    ) -> None:
        self._cell_text = cell_text
        self._out = out
        self._row_no = 0
        self._cells: list[str | None] = []
        self._text: list[str] = []
        self._cell: tuple[str | None, str | None, str | None] | None = None
        self._collect = self._in_is = self._phonetic = False
        self._col = 0
        self._bad: str | None = None
        self._depth = 0  # counted here, not by _bounded: this is the per-element hot path
        self._parser = _parser(namespaces=False)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._data
        self._parser.Parse("<sheetData>", False)

    def feed(self, xml: str, row_no: int) -> None:
        """Read complete elements of sheetData: one <row>, as a rule."""
        self._row_no = row_no
        self._parser.Parse(xml, False)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_deep()
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
        if self._cell is None:
            return
        ref, typ, style = self._cell
        self._cell = None
        at = self._col if ref is None else _column(ref.rstrip("0123456789"))
        self._col = at + 1
        raw = "".join(self._text)
        if not raw:
            return
        try:
            text = self._cell_text(raw, typ, style)
        except _CellProblem as problem:
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


# Cell text rules, shared with the XLS reader.
# Built-in number formats that show dates or times (27-36 and 50-58 are the CJK ones).
DATE_FORMATS_BUILTIN = frozenset(
    str(i) for i in (*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59))
)
_QUOTED_OR_BRACKETED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|[_*].')
# Serial 61 is 1900-03-01: Excel counts a fictitious 1900-02-29 (serial 60) from 1900-01-01 (1).
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
_MAX_SERIAL = 2958466  # 10000-01-01


def is_date_code(code: str) -> bool:
    """True when a number format shows a date or time: d, m, y, h or s outside quotes and brackets."""
    bare = _QUOTED_OR_BRACKETED.sub("", code).lower()
    return any(ch in bare for ch in "dmyhs")


def number_text(raw: str) -> str:
    """A stored number as text: integers without '.0', other floats repr-shortest."""
    if raw.isascii() and raw.isdigit() and len(raw) < 16 and (raw[0] != "0" or len(raw) == 1):
        return raw  # the common case, already canonical
    try:
        return float_text(float(raw))
    except ValueError:
        return raw


def float_text(value: float) -> str:
    """42.0 -> '42' (while exact), 3.14 -> '3.14'."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def date_text(raw: str, date1904: bool) -> str:
    """A date-formatted serial as ISO 8601; below 1 it is a time of day."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    if not 0 <= value < _MAX_SERIAL:
        return float_text(value)
    # Excel keeps milliseconds; finer digits are float noise.
    days, ms = divmod(round(value * 86_400_000), 86_400_000)
    if not days:
        return _clock(ms)
    if days >= _MAX_SERIAL:  # rounded up past 9999-12-31
        return float_text(value)
    day = _day(days, date1904)
    return f"{day}T{_clock(ms)}" if ms else day


@lru_cache(maxsize=1024)
def _day(days: int, date1904: bool) -> str:
    """The ISO date of a day serial (rows of one table tend to share days)."""
    if date1904:
        base = _EPOCH_1904
    else:
        base = _EPOCH_1900 if days >= 60 else _EPOCH_1900 + timedelta(days=1)
    return (base + timedelta(days=days)).date().isoformat()


def _clock(ms: int) -> str:
    """'HH:MM:SS[.ffffff]' of milliseconds into a day."""
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}000"
        if ms
        else f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    )


def datetime_text(value: datetime) -> str:
    """Midnight -> 'YYYY-MM-DD', else 'YYYY-MM-DDTHH:MM:SS[.ffffff]'."""
    if value.time() == time(0):
        return value.date().isoformat()
    return value.isoformat()


def iso_text(raw: str) -> str:
    """An ISO 8601 cell (t="d") in the same form as serial dates."""
    try:
        return datetime_text(datetime.fromisoformat(raw))
    except ValueError:
        try:
            return time.fromisoformat(raw).isoformat()
        except ValueError:
            return raw
