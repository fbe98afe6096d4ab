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
from actors.readers.cells import date_text
from actors.readers.xlsx import columns, markup
from actors.readers.xlsx.exact import ExactRows
from actors.readers.xlsx.strings import SharedStrings
from tests.support import (
    NS,
    hand_xlsx,
    make_xlsx,
    sheet_xml,
    to_shared_strings,
)
from tests.support.files import rows_of


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The numbers of the rows read by expat callbacks, in order (a spy on ExactRows.feed)."""
    feed = ExactRows.feed
    numbers: list[int] = []

    def counted(self: ExactRows, xml: str, row_no: int) -> None:
        numbers.append(row_no)
        feed(self, xml, row_no)

    monkeypatch.setattr(ExactRows, "feed", counted)
    return numbers


def test_xlsx_many_rows_read_alike_by_template_and_by_expat(tmp_path: Path, slow: list[int]) -> None:
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


def assert_fast_reads_as_exact(path: Path, rows: str) -> None:
    """Sheet S of these rows (shared strings 'zero', ' one ', ''; style 1 a date) reads the same
    (rows, or the error) by the fast paths and by expat alone."""
    strings = f'<sst {NS}><si><t>zero</t></si><si><t xml:space="preserve"> one </t></si><si><t></t></si></sst>'
    styles = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>'
    hand_xlsx(path, sheet_xml(rows), strings=strings, styles=styles)

    def outcome(fast: bool) -> object:
        try:
            return list(read_rows(path, FileInfo(format="xlsx", sheet="S"), fast=fast))
        except ReaderError as exc:
            return str(exc)

    assert outcome(fast=True) == outcome(fast=False)


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
    assert_fast_reads_as_exact(tmp_path / "t.xlsx", "".join(rows))


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


def test_shared_strings_of_any_width_read_back_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compact table (one string, entries past U+FFFF apart) gives every entry back exactly,
    across many pieces of the part, by the split and by expat."""
    monkeypatch.setattr(markup, "CHUNK", 700)  # the table arrives in dozens of pieces
    kinds = ["plain {}", "caf\u00e9 {}", "{} \u20ac", "\U0001f600 {}", "{} mixed \U0001f600 \u20ac \u00e9", ""]
    texts = [kinds[i % len(kinds)].format(i) for i in range(300)]
    entries = [
        f"<si><r><t>{t[:3]}</t></r><r><t>{t[3:]}</t></r></si>" if i % 50 == 7 else f"<si><t>{t}</t></si>"
        for i, t in enumerate(texts)
    ]
    rows = "".join(f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c><c r="B{i + 1}"><v>1</v></c></row>' for i in range(300))
    path = hand_xlsx(tmp_path / "w.xlsx", sheet_xml(rows), strings=f"<sst {NS}>{''.join(entries)}</sst>")
    expected = [(i + 1, [t or None, "1"]) for i, t in enumerate(texts)]
    for fast in (True, False):
        assert list(read_rows(path, FileInfo(format="xlsx", sheet="S"), fast=fast)) == expected


CLEAN_VALUE = {  # values every template reads without falling back, so runs are read column-wise
    "n": st.integers(-(10**9), 10**9).map(str),
    "s": st.sampled_from(["0", "1", "2"]),
    "b": st.sampled_from(["0", "1"]),
    "e": st.just("#N/A"),
    "str": TEXT.filter(bool),
    "inlineStr": TEXT.filter(bool),
    "d": st.just("2024-01-02"),
}
HEADS = ["", ' spans="1:4"', ' ht="15" customHeight="1"']


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_runs_of_alike_rows_read_alike_by_regex_and_by_expat(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Runs of rows sharing markup are read by one regex split a run; a row in a run that differs
    (in a value, a reference's row number, its own attributes) reads as expat reads it."""
    shapes = data.draw(st.lists(st.lists(CELL_SHAPE, min_size=1, max_size=4), min_size=1, max_size=2))
    rows: list[str] = []
    for _ in range(data.draw(st.integers(1, 3))):  # runs, each all clean or with one odd row
        shape, head = data.draw(st.sampled_from(shapes)), data.draw(st.sampled_from(HEADS))
        length = data.draw(st.integers(10, 24))
        odd_at = data.draw(st.sampled_from([None, 1, length // 2, length - 1]))
        odd = data.draw(st.sampled_from(["value", "reference", "head"]))
        for i in range(length):
            n = len(rows) + 1
            values = RAW_VALUE if i == odd_at and odd == "value" else CLEAN_VALUE
            cells = "".join(cell_xml(c, data.draw(values[c[1]]), n) for c in shape)
            if i == odd_at and odd == "reference":
                cells = cells.replace(f'{n}"', f'{n + 1}"', 1)
            rows.append(f'<row r="{n}"{HEADS[1] if i == odd_at and odd == "head" else head}>{cells}</row>')
    assert_fast_reads_as_exact(tmp_path / "r.xlsx", "\n".join(rows))


def test_long_runs_are_read_column_wise(tmp_path: Path, slow: list[int]) -> None:
    """A sheet of alike rows goes through expat only for the rows that differ."""
    rows = []
    for n in range(1, 501):  # three runs (alike rows with as many tags); the middle one has no inline string
        value = "" if n == 350 else f"{n}&amp;x"  # row 350: an empty value, for expat to judge
        ref = n + 1 if n == 450 else n  # row 450: a reference naming another row
        last = (
            f'<c r="D{n}"><v>{n}</v></c>'
            if 200 < n <= 400
            else f'<c r="C{n}" t="inlineStr"><is><t xml:space="preserve"> {n}\r</t></is></c>'
        )
        rows.append(
            f'<row r="{n}"><c r="A{n}"><v>{n * 1.5}</v></c><c r="B{ref}" t="str"><f>A1</f><v>{value}</v></c>{last}</row>'
        )
    path = hand_xlsx(tmp_path / "long.xlsx", sheet_xml("".join(rows)))
    info = FileInfo(format="xlsx", sheet="S")
    fast = list(read_rows(path, info))
    assert slow == [350, 450]
    assert fast[0] == (1, ["1.5", "1&x", " 1\n"]) and fast[349] == (350, ["525", None, None, "350"])
    assert fast == list(read_rows(path, info, fast=False))


def test_date_serials_remembered_read_as_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-sheet memory of date texts gives what date_text gives, also once it is full and starts over."""
    monkeypatch.setattr(columns, "_DATES_KEPT", 5)
    for date1904 in (False, True):
        text = columns.ColumnText(SharedStrings(None), date1904)
        for batch in (["45000", "45001", "45000.25"], ["45001", "61", "60", "0.5", "45002"], ["45000", "45002"]):
            assert text.dates(batch) == [date_text(v, date1904) for v in batch]
