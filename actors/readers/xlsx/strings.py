"""The shared-strings table, read only as far as the sheet has asked (sheets ask mostly in order)."""

from __future__ import annotations

from typing import Any

from actors.readers.errors import ReaderError
from actors.readers.xlsx.markup import (
    ROW_XML_LIMIT,
    PartText,
    Readable,
    bounded,
    character_data,
    safe_parser,
    unescape_ooxml,
)

SST_TEXT_LIMIT = 256 << 20  # characters of shared strings held in memory, at most


class SharedStrings:
    """The table's entries so far; plain ones are read by one split, the rest by expat callbacks.

    fast=False reads every entry by expat (the reference the split is tested against).
    """

    def __init__(self, part: Readable | None, fast: bool = True) -> None:
        self.items: list[str] = []
        self._text = PartText(part) if part is not None else None
        self._fast = fast
        self._pending = ""
        self._chars = 0
        self._rich: Any = None  # an expat parser for entries the fast split cannot take

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
                self._read_entries(ready[start:end])
                ready = ready[end:]
            self._pending = ready + held
            if len(self._pending) > ROW_XML_LIMIT:
                raise ReaderError(
                    f"a shared string is longer than {ROW_XML_LIMIT} characters; refused"
                )

    def _read_entries(self, xml: str) -> None:
        """Append the entries in xml (complete <si> elements): plain ones by one split, else by expat."""
        texts = plain_entries(xml) if self._fast else None
        if texts is not None:
            self._keep(texts)
            return
        if self._rich is None:
            self._rich = self._rich_text_parser()
        self._rich.Parse(xml, False)

    def _keep(self, texts: list[str]) -> None:
        """Append entries, refusing a table whose text outgrows SST_TEXT_LIMIT."""
        self.items.extend(texts)
        self._chars += sum(map(len, texts))
        if self._chars > SST_TEXT_LIMIT:
            raise ReaderError(
                f"workbook's shared strings exceed {SST_TEXT_LIMIT} characters; refused"
            )

    def _rich_text_parser(self) -> Any:
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
                self._keep([unescape_ooxml("".join(parts))])

        def data(text: str) -> None:
            if state["collect"]:
                parts.append(text)

        parser = safe_parser(namespaces=False)
        bounded(parser, start, end)
        parser.CharacterDataHandler = data
        parser.Parse("<sst>", False)
        return parser


def plain_entries(xml: str) -> list[str] | None:
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
        texts = list(map(character_data, texts))
    return list(map(unescape_ooxml, texts)) if "_x" in plain else texts
