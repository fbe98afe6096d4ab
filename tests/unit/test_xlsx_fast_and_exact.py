"""The XLSX fast paths (templates, the shared-strings split) read exactly what the expat path reads (fast=False)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.readers import FileInfo, ReaderError, read_rows
from actors.readers.xlsx.exact import ExactRows
from tests.support import (
    NS,
    hand_xlsx,
    make_xlsx,
    sheet_xml,
    to_shared_strings,
)
from tests.support.files import rows_of


def test_xlsx_many_rows_read_alike_by_template_and_by_expat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(7)
    pool: list[Callable[[], object]] = [
        lambda: rnd.randint(-(10**6), 10**6),
        lambda: rnd.random() * 1000,
        lambda: rnd.choice(["x", "y & z", ""]),
        lambda: None,
        lambda: rnd.choice([True, False]),
        lambda: dt.datetime(2020, 1, 1) + dt.timedelta(minutes=rnd.randint(0, 10**6)),
        lambda: f"word{rnd.randint(0, 50)}",
        lambda: "#REF!" if rnd.random() < 0.01 else 1.5,
    ]
    data = [[rnd.choice(pool)() for _ in range(rnd.randint(1, 9))] for _ in range(3000)]
    path = to_shared_strings(make_xlsx(tmp_path / "a.xlsx", {"S": data}))
    feed = ExactRows.feed
    slow: list[int] = []

    def counted(self: ExactRows, xml: str, row_no: int) -> None:  # a spy: it only counts
        slow.append(row_no)
        feed(self, xml, row_no)

    monkeypatch.setattr(ExactRows, "feed", counted)
    info, fast = rows_of(path)
    assert len(slow) < len(data) // 4  # most rows repeat a shape already learned
    # Now every row goes through expat callbacks.
    slow.clear()
    exact = list(read_rows(path, info, fast=False))
    assert fast == exact
    assert len(slow) == len(data)
    assert len(fast) == sum(1 for row in data if any(v not in (None, "") for v in row))


TEXT = st.lists(st.sampled_from(list("ab <>&\"'\n\r_x0D") + ["_x000D_", "é"]), max_size=6).map(
    "".join
)


RAW_VALUE = {
    "n": st.one_of(
        st.integers(-(10**18), 10**18).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(
            ["", " 7 ", "1e5", "abc", "007", "-0", "60", "45000.5", "0.25", "2958465.9999999"]
        ),
    ),
    "s": st.sampled_from(["0", "1", "2", "9", "-1", "x", "", "+1"]),
    "b": st.sampled_from(["0", "1", "true", "x", ""]),
    "e": st.sampled_from(["#N/A", "#DIV/0!", ""]),
    "str": TEXT,
    "inlineStr": TEXT,
    "d": st.sampled_from(["2024-01-02", "2024-01-02T03:04:05", "12:30:00", "junk", ""]),
}


CELL_SHAPE = st.tuples(
    st.sampled_from(["A", "B", "C", "AB", None]),  # column letters, or no reference at all
    st.sampled_from(list(RAW_VALUE)),
    st.sampled_from([None, "0", "1"]),  # style 1 is a date format
    st.sampled_from(["v", "empty", "formula", "preserve", "rich"]),
)


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell_xml(shape: tuple[str | None, str, str | None, str], value: str, row: int) -> str:
    letters, typ, style, form = shape
    attrs = (
        (f' r="{letters}{row}"' if letters else "")
        + (f' s="{style}"' if style else "")
        + (f' t="{typ}"' if typ != "n" else "")
    )
    if form == "empty":
        return f"<c{attrs}/>"
    if typ == "inlineStr":
        runs = {
            "rich": f"<r><t>{xml_text(value[:2])}</t></r><r><t>{xml_text(value[2:])}</t></r>",
            "preserve": f'<t xml:space="preserve">{xml_text(value)}</t>',
        }
        return f"<c{attrs}><is>{runs.get(form, f'<t>{xml_text(value)}</t>')}</is></c>"
    formula = "<f>A1&amp;1</f>" if form == "formula" else ""
    return f"<c{attrs}>{formula}<v>{xml_text(value)}</v></c>"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_templates_and_expat_agree_on_any_sheet(tmp_path: Path, data: st.DataObject) -> None:
    shapes = data.draw(st.lists(st.lists(CELL_SHAPE, max_size=5), min_size=1, max_size=3))
    rows = []
    for row in range(1, data.draw(st.integers(1, 40)) + 1):
        shape = data.draw(st.sampled_from(shapes))
        cells = "".join(cell_xml(c, data.draw(RAW_VALUE[c[1]]), row) for c in shape)
        rows.append(
            f'<row r="{row}">{cells}</row>' if data.draw(st.booleans()) else f"<row>{cells}</row>"
        )
    strings = f'<sst {NS}><si><t>zero</t></si><si><t xml:space="preserve"> one </t></si><si><t></t></si></sst>'
    styles = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>'
    path = hand_xlsx(tmp_path / "t.xlsx", sheet_xml("".join(rows)), strings=strings, styles=styles)

    def outcome(fast: bool) -> object:
        try:
            return list(read_rows(path, FileInfo(format="xlsx", sheet="S"), fast=fast))
        except ReaderError as exc:
            return str(exc)

    assert outcome(fast=True) == outcome(fast=False)


SHARED_ENTRY = st.one_of(
    TEXT.map(lambda v: f"<si><t>{xml_text(v)}</t></si>"),
    TEXT.map(lambda v: f'<si><t xml:space="preserve">{xml_text(v)}</t></si>'),
    st.tuples(TEXT, TEXT).map(
        lambda v: f"<si><r><t>{xml_text(v[0])}</t></r><r><t>{xml_text(v[1])}</t></r></si>"
    ),
    TEXT.map(lambda v: f'<si><t>{xml_text(v)}</t><rPh sb="0" eb="1"><t>ふ</t></rPh></si>'),
    st.sampled_from(["<si/>", "<si><t/></si>", "<si>\n <t>x</t>\n</si>"]),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(SHARED_ENTRY, min_size=1, max_size=30))
def test_shared_strings_read_alike_by_split_and_by_expat(
    tmp_path: Path, entries: list[str]
) -> None:
    rows = "".join(
        f'<row r="{i}"><c r="A{i}" t="s"><v>{i - 1}</v></c></row>'
        for i in range(1, len(entries) + 1)
    )
    path = hand_xlsx(
        tmp_path / "s.xlsx", sheet_xml(rows), strings=f"<sst {NS}>{''.join(entries)}</sst>"
    )
    info = FileInfo(format="xlsx", sheet="S")
    fast = list(read_rows(path, info))
    exact = list(read_rows(path, info, fast=False))  # every entry through expat
    assert fast == exact
