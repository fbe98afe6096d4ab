"""Cell text rules in bulk (a column at a time) give what the one-cell rules give."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from actors.readers.cells import datetime_text, datetime_texts, float_text, float_texts, number_text
from actors.readers.xlsx.columns import ColumnText, numbers
from actors.readers.xlsx.strings import SharedStrings

NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12).map(lambda cents: cents / 100),  # the common column: no exponent
    st.sampled_from([-0.0, 0.0, 1e16, 2.0**53, 1e-7, 0.1]),
    st.floats(),
)


@given(st.lists(NUMBERS, max_size=20))
@example([12.5, -0.0, 3.0])  # -0.0 reads "0", not "-0"
def test_float_texts_are_float_text_a_column_at_a_time(values: list[float]) -> None:
    assert float_texts(values) == list(map(float_text, values))


@given(st.lists(st.datetimes(min_value=dt.datetime(1900, 1, 1)), max_size=20))
def test_datetime_texts_are_datetime_text_a_column_at_a_time(values: list[dt.datetime]) -> None:
    assert datetime_texts(values) == list(map(datetime_text, values))


NUMBER_TEXT = st.one_of(
    st.integers(-(10**17), 10**17).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.tuples(st.integers(-(10**8), 10**8), st.integers(0, 10**6)).map(lambda p: f"{p[0]}.{p[1]}"),
    st.integers(-(10**9), 10**9).map(lambda cents: f"{cents / 100:.2f}"),  # trailing zeros
    st.sampled_from(
        ["007", "-0", "0", "-0.5", "1.50", "1e5", "0.1", "9007199254740993", "123456789012345"]
        + ["12.", "0.", "-0.", "-0.00", "0.0", "5.000", "100", "10.010", "00.5", "-.5", ".5"]
    ),
)


@given(st.lists(NUMBER_TEXT, min_size=1, max_size=20))
@example(["12.25", "-0", "3"])  # "-0" reads "0"
@example(["1.50", "100", "2.00"])  # trailing zeros after the point go
def test_number_columns_read_as_number_text_reads_each(raw: list[str]) -> None:
    assert numbers(raw) == list(map(number_text, raw))


INDEX_TEXT = st.sampled_from(["0", "1", "2", " 2 ", "+1", "0_1", "01", "1,0", "-1", "3", "1.0", "x"])


@given(st.lists(INDEX_TEXT, min_size=1, max_size=8))
def test_shared_string_indices_read_as_int_reads_each(raw: list[str]) -> None:
    entries = ["zero", "one", "two"]
    strings = SharedStrings(None)
    strings._keep(entries)

    def outcome(read: Callable[[], list[str]]) -> object:
        try:
            return read()
        except (ValueError, IndexError) as exc:  # the column is then read cell by cell, exactly
            return type(exc)

    def one_by_one() -> list[str]:
        idx = [int(v) for v in raw]
        if min(idx) < 0 or max(idx) >= len(entries):
            raise IndexError
        return [entries[i] for i in idx]

    assert outcome(lambda: ColumnText(strings, False).shared(raw)) == outcome(one_by_one)
