"""Cell text rules in bulk (a column at a time) give what the one-cell rules give."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given
from hypothesis import strategies as st

from actors.readers.cells import datetime_text, datetime_texts, float_text, float_texts

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
