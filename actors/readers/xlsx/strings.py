"""The shared-strings table, read only as far as the sheet has asked (sheets ask mostly in order).

Kept compact: every entry end to end in one string, with an array of where each ends. As a list of
str objects a table of short unique texts (emails, names, notes) costs ~100 bytes an entry, 49 of
them object header: 40 MB for a 200k-row sheet's 400k entries, against 17 MB this way. A slice per
lookup costs ~0.15 us more than a list's item. The one string takes the widest character in it, so
entries with characters past U+FFFF (emoji) are kept apart, and the rest stay at two bytes a
character at most.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate, islice
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
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class SharedStrings:
    """The table's entries so far; plain ones are read by one split, the rest by expat callbacks.

    fast=False reads every entry by expat (the reference the split is tested against).
    """

    def __init__(self, part: Readable | None, fast: bool = True) -> None:
        self._all = ""  # every entry so far, end to end
        self._ends = array("I", [0])  # entry i is _all[_ends[i]:_ends[i + 1]] (SST_TEXT_LIMIT fits)
        self._astral: dict[int, str] = {}  # entries with characters past U+FFFF ("" in _all)
        self._text = PartText(part) if part is not None else None
        self._fast = fast
        self._pending = ""
        self._chars = 0
        self._rich: Any = None  # an expat parser for entries the fast split cannot take
        self._rich_out: list[str] = []  # the entries it has read from the XML last fed to it

    @property
    def count(self) -> int:
        """How many entries have been read so far."""
        return len(self._ends) - 1

    def close(self) -> None:
        """Drop the entries and the parts' state: whatever still refers to this table (a parser's
        handlers make reference cycles) then holds nothing big until the next full collection."""
        self._all, self._ends, self._astral = "", array("I", [0]), {}
        self._text = None
        self._pending = ""
        self._rich = None
        self._rich_out = []

    def get(self, index: int) -> str | None:
        """Entry `index`, or None when the table has no such entry."""
        if index >= self.count:
            self.load(index)
        return self.many([index])[0] if 0 <= index < self.count else None

    def many(self, indices: list[int]) -> list[str]:
        """Entries by index, all of which have been read (load first)."""
        text, ends = self._all, self._ends
        got = [text[ends[i] : ends[i + 1]] for i in indices]
        astral = self._astral
        if astral and not astral.keys().isdisjoint(indices):
            got = [astral.get(i, entry) for i, entry in zip(indices, got, strict=True)]
        return got

    def load(self, index: int) -> None:
        """Read on until entry `index` exists or the table ends."""
        text = self._text
        while text is not None and index >= self.count and not text.done:
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
        self._keep(self._rich_out)
        self._rich_out.clear()

    def _keep(self, texts: list[str]) -> None:
        """Append entries, refusing a table whose text outgrows SST_TEXT_LIMIT."""
        self._chars += sum(map(len, texts))
        if self._chars > SST_TEXT_LIMIT:
            raise ReaderError(
                f"workbook's shared strings exceed {SST_TEXT_LIMIT} characters; refused"
            )
        joined = "".join(texts)
        if not joined.isascii() and _ASTRAL.search(joined):
            first = self.count
            for k, entry in enumerate(texts):
                if _ASTRAL.search(entry):
                    self._astral[first + k] = entry
            texts = ["" if first + k in self._astral else entry for k, entry in enumerate(texts)]
            joined = "".join(texts)
        self._ends.extend(islice(accumulate(map(len, texts), initial=self._ends[-1]), 1, None))
        text, self._all = self._all, ""  # one reference left: += grows the string in place
        text += joined
        self._all = text

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
                self._rich_out.append(unescape_ooxml("".join(parts)))

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
