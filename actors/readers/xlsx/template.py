"""The template fast path: the first row of each shape teaches which tokens hold its values.

A row is split into tokens at "<". A template keeps the tokens that hold only markup (with the
row number in cell references marked \\x00) and the positions of the value tokens; any later row
whose markup matches token for token is read through it, and a run of such rows is checked and
read by one split with a regex built from the template. Anything a template cannot vouch for
(rich text, odd quoting, comments, anything unknown) makes learn_template return None, and the
row goes to the exact reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from actors.readers.xlsx.exact import MAX_COLUMNS, column_index
from actors.readers.xlsx.markup import character_data

Picker = Callable[[Sequence[Any]], tuple[Any, ...]]

# A cell's t= decides how its value converts; any other t= is plain text ("raw").
_KINDS = {"s": "s", "b": "b", "e": "e", "d": "iso"}
_KEPT = frozenset(("/v", "/t", "/f", "/row", "/c", "f", "f/", "v/", "c", "c/", "is", "/is"))
_REF = re.compile(r'\sr="([^"]*)"')
_ATTR = re.compile(r'([\w:.-]+)="([^"]*)"')


class Template:
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
        "pattern",
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
        # For runs of rows, what run_pattern builds its regex from: tokens per row, then each kept
        # token as (text before, \x00 if the row number follows, text after); value and formula
        # token positions; and for each output column the value slot it shows (None: empty).
        self.size = size
        self.first = kept[0]
        self.checks = [
            (q, *tok.partition("\x00")) for q, tok in zip(keep[1:], kept[1:], strict=True)
        ]
        self.value_at = values
        self.formula_at = formulas
        self.slots: list[int | None] = [None if k == len(cells) else k for k in slots]
        self.pattern: re.Pattern[str] | None = None  # compiled when a run first needs it


def _picker(idx: list[int]) -> Picker:
    """itemgetter that always returns a tuple, even for one index or none."""
    if len(idx) > 1:
        return itemgetter(*idx)
    if idx:
        i = idx[0]
        return lambda seq: (seq[i],)
    return lambda seq: ()


def learn_template(tokens: list[str], row_str: str, date_styles: frozenset[str]) -> Template | None:
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
                col = column_index(letters)
                tok = tok[: found.start(1) + len(letters)] + "\x00" + tok[found.end(1) :]
            if not 0 <= col < MAX_COLUMNS or col in used:
                return None
            used.add(col)
            typ = attrs.get("t")
            if typ is None or typ == "n":
                kind = "date" if attrs.get("s") in date_styles else "num"
            else:
                kind = _KINDS.get(typ, "raw")
            cell = None if name == "c/" or markup.endswith("/") else (col, kind, letters or None)
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
    return Template(len(tokens), keep, skel, values, formulas, cells, inline)


def row_values(t: Template, tokens: list[str], row_str: str, plain: bool) -> list[Any] | None:
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
        values = list(map(character_data, values))
    if "" in values:
        return None  # an empty value: the exact reader knows what that means
    values.append(None)
    return values


def run_values(
    t: Template, pieces: list[str], plain: bool
) -> tuple[list[str], list[list[Any]]] | None:
    """(row numbers as written, raw values column by column) of rows that all fit t; else None.

    One regex split over the run: its groups are each row's number and values, and the run fits
    only when the matches tile it, so nothing but those strings is ever made.
    """
    if t.pattern is None:
        t.pattern = run_pattern(t)
    n, width = len(pieces), len(t.value_at) + 2  # a separator, the row number, the values
    parts = t.pattern.split("<row" + "<row".join(pieces))
    if len(parts) != n * width + 1 or "".join(parts[0::width]):
        return None  # some stretch of the run is no row of this template
    values: list[list[Any]] = []
    for j in range(2, width):
        column = parts[j::width]
        if not plain:
            joined = "".join(column)
            if "&" in joined or "\r" in joined:
                column = list(map(character_data, column))
        values.append(column)
    return parts[1::width], values


def run_pattern(t: Template) -> re.Pattern[str]:
    """A regex matching one whole row of t, exactly the rows the token checks accept: the head
    r="<number>" first, any other attributes, then every token as learned (the row number
    inside references the same), values non-empty, formulas any text."""
    kinds = {q: "value" for q in t.value_at} | {q: "formula" for q in t.formula_at}
    checks = {q: (before, numbered, after) for q, before, numbered, after in t.checks}
    value = '<(?:v|t|t xml:space="preserve")>([^<]+)' if t.inline else "<v>([^<]+)"
    out = ['<row r="([0-9]+)"[^<>]*>', re.escape(t.first)]
    for q in range(1, t.size):
        kind = kinds.get(q)
        if kind == "value":
            out.append(value)
        elif kind == "formula":
            out.append("<f>[^<]*")
        else:
            before, numbered, after = checks[q]
            out.append("<" + re.escape(before) + (r"\1" + re.escape(after) if numbered else ""))
    return re.compile("".join(out))
