"""Workbook XML read safely: expat that refuses any DTD, parts as decoded text, XML and Excel escapes."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Any, Protocol
from xml.parsers import expat

from actors.readers.errors import ReaderError

ROW_XML_LIMIT = 32 << 20  # characters of XML one row (or one shared string) may span
CHUNK = 1 << 18  # bytes inflated per step: small enough to stay flat, big enough to batch rows
MAX_DEPTH = 64  # element nesting in any part (real workbooks nest about 8); expat keeps every open element

_DTD_REFUSED = "workbook XML declares a DTD/entities; refused"
_QNAME = re.compile(r"(?:([A-Za-z_][\w.-]*):)?[A-Za-z_]")
_SPECIAL = re.compile(r"<!\[CDATA\[(.*?)\]\]>|<!--.*?-->|<\?.*?\?>|<!--|<\?|<!\[CDATA\[", re.S)
_DECLARED = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_REFERENCE = re.compile(r"&(#[0-9]+|#x[0-9A-Fa-f]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


class Readable(Protocol):
    """A part's inflated bytes, read a piece at a time."""

    def read(self, size: int) -> bytes:
        """Up to size bytes; b"" at the end."""
        ...


def _refuse_dtd(*_: object) -> None:
    raise ReaderError(_DTD_REFUSED)


def safe_parser(namespaces: bool = True) -> Any:
    """An expat parser that refuses any DTD, so entities (billion laughs, external) never expand."""
    parser = expat.ParserCreate(namespace_separator="}") if namespaces else expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


def too_deep() -> ReaderError:
    """The refusal of a part nesting elements past MAX_DEPTH."""
    return ReaderError(f"workbook XML nests elements deeper than {MAX_DEPTH} levels; refused")


def bounded(parser: Any, start: Any, end: Any = None) -> None:
    """Set element handlers that also refuse nesting past MAX_DEPTH (depth is memory to expat)."""
    depth = 0

    def on_start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise too_deep()
        start(name, attrs)

    def on_end(name: str) -> None:
        nonlocal depth
        depth -= 1
        if end is not None:
            end(name)

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end


def parse_part(part: Readable, start: Any, end: Any = None) -> None:
    """Feed a whole (small) part to a fresh parser with these element handlers."""
    parser = safe_parser()
    bounded(parser, start, end)
    while chunk := part.read(CHUNK):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


class PartText:
    """A part as decoded text, chunk by chunk, once its prolog has been checked for a DTD.

    No whole-part parse: every row is later either parsed by expat or matched token for token
    against a template learned from a row that passed strict checks. A DTD can only stand in
    the prolog, before the root element, so refusing one there refuses it in the whole part.
    """

    def __init__(self, part: Readable) -> None:
        self._part = part
        self._decode: Callable[[bytes, bool], str] | None = None
        self._prefix: str | None = None  # the root's namespace prefix, stripped from every tag
        self._head = ""
        self.done = False

    def read(self) -> str:
        """The next chunk as text; "" while the prolog is still being read."""
        chunk = self._part.read(CHUNK)
        if self._decode is None:
            self._decode = codecs.getincrementaldecoder(_encoding(chunk))("strict").decode
        self.done = not chunk
        text = self._decode(chunk, self.done)
        if self._prefix is not None:
            return text
        self._head += text
        root = _root_element_at(self._head, self.done)
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


def _root_element_at(text: str, final: bool) -> int:
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
            raise ReaderError(_DTD_REFUSED)
        else:
            return at
    return -1


def _encoding(head: bytes) -> str:
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


def _referenced(m: re.Match[str]) -> str:
    """The character an entity or character reference stands for."""
    name = m[1]
    if name[0] != "#":
        return _NAMED[name]
    return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))


def character_data(raw: str) -> str:
    """Raw character data as an XML parser reports it: line ends normalised, references resolved."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return _REFERENCE.sub(_referenced, raw) if "&" in raw else raw


def _escaped_char(m: re.Match[str]) -> str:
    """The character one _xHHHH_ escape stands for, or the escape itself for a lone surrogate."""
    code = int(m[1], 16)
    return m[0] if 0xD800 <= code <= 0xDFFF else chr(code)  # a lone surrogate could not be stored


def unescape_ooxml(text: str) -> str:
    """Excel's _xHHHH_ escapes (characters XML cannot carry) back to the characters."""
    return _OOXML_ESCAPE.sub(_escaped_char, text) if "_x" in text else text
