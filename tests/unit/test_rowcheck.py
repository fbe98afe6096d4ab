"""The msgspec row check against the Python one: the same ValidRow or message for every row."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import rowcheck
from events.datasets import (
    FIELD_TYPES,
    DatasetSchema,
    Field,
    FieldType,
    RowValidator,
    ValidRow,
    parse_schema,
)

SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000"


def _cased(words: list[str]) -> st.SearchStrategy[str]:
    """The words with each letter upper- or lowercase."""
    return st.builds(
        lambda word, flips: "".join(
            c.upper() if flip else c for c, flip in zip(word, flips, strict=False)
        ),
        st.sampled_from(words),
        st.lists(st.booleans(), min_size=5, max_size=5),
    )


def _padded(cells: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Cells, now and then with whitespace around them."""
    pad = st.sampled_from(["", "", "", " ", "\t", "\xa0"])
    return st.builds(lambda a, cell, b: a + cell + b, pad, cells, pad)


NUMBER = r"[+-]?[0-9]{0,24}(\.[0-9]{0,24})?([eE][+-]?[0-9]{1,4})?"
# Cells of each type the way files write them, at the edges of each rule, and beyond them.
CELLS: dict[str, st.SearchStrategy[str]] = {
    "integer": st.one_of(
        st.integers(-(2**64), 2**64).map(str),
        st.integers(-(2**63), 2**63).map(lambda v: f"{v}.0"),
        st.from_regex(NUMBER, fullmatch=True),
        st.sampled_from(
            ["9007199254740993.0", "10.000000000000000001", "1e999999999", "0e999", "-0", "007"]
            + ["٣", "1_000", "inf", "nan", "9223372036854775807.0", "4.2e1", "1E3", "-1e-1"]
        ),
    ),
    "decimal": st.one_of(
        st.decimals(places=None).map(str),
        st.from_regex(NUMBER, fullmatch=True),
        st.from_regex(r"-?[0-9]{95,105}(\.[0-9]{95,105})?", fullmatch=True),
        st.sampled_from(["-0.00", "1e100", "1e99", ".5", "5.", "+3.5", "007.5", "NaN", "-inf"]),
    ),
    "boolean": _cased(["true", "false", "t", "f", "yes", "no", "y", "n", "1", "0", "on", "tru"]),
    "date": st.one_of(
        st.dates().map(date.isoformat),
        st.dates().map(lambda d: f"{d.isoformat()}T00:00:00"),
        st.datetimes().map(lambda d: d.isoformat(sep=" ")),
        st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", fullmatch=True),
        st.sampled_from(["2024-02-30", "0000-01-01", "２０２４-01-05", "2024-W01-1", "20240105"]),
    ),
    "datetime": st.one_of(
        st.builds(
            lambda d, sep, spec: d.isoformat(sep=sep, timespec=spec),
            st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
            st.sampled_from(["T", " ", "t"]),
            st.sampled_from(["auto", "minutes", "seconds", "milliseconds"]),
        ),
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt _][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,8})?)?"
            r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?",
            fullmatch=True,
        ),
        st.sampled_from(
            ["2024-01-05T23:59:60", "2024-01-05T24:00:00", "0001-01-01T00:00:00+01:00"]
        ),
    ),
    "email": st.one_of(
        st.from_regex(
            r"[A-Za-z0-9._%+'-]{1,70}@[A-Za-z0-9-]{1,66}(\.[A-Za-z0-9-]{1,8}){1,3}", fullmatch=True
        ),
        st.sampled_from(["\u212aim@example.com", "ann@exämple.com", "a..b@c.com", "a@b"]),
    ),
    "string": st.one_of(
        st.text(max_size=20),
        st.text(alphabet=SPACES, min_size=1, max_size=4),
        st.sampled_from(["a\ud800b", "\udfff", "x" * 65_535, "y" * 65_536, "Zoë 🙂"]),
    ),
}
BLANKS = st.one_of(st.none(), st.just(""), st.text(alphabet=SPACES, min_size=1, max_size=3))


def cells_of(kind: str) -> st.SearchStrategy[str | None]:
    """Any cell a field of this type may meet: its own cells, padded or not, blanks, junk."""
    return st.one_of(_padded(CELLS[kind]), BLANKS, st.text(max_size=12))


def both(schema: DatasetSchema, present: tuple[str, ...]) -> tuple[RowValidator, RowValidator]:
    """The Python and the msgspec validator for one plan."""
    return (
        RowValidator(schema, present, engine="python"),
        RowValidator(schema, present, engine="msgspec"),
    )


@pytest.mark.parametrize("kind", FIELD_TYPES)
@pytest.mark.parametrize("role", ["optional", "required", "key"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_each_type_gives_what_the_python_path_gives(
    kind: FieldType, role: str, data: st.DataObject
) -> None:
    # Given a field of the type, optional, required or the key, beside a string key
    x = Field(name="x", type=kind, required=role != "optional")
    schema = DatasetSchema(
        fields=(Field(name="id", required=True), x), key=("x", "id") if role == "key" else ("id",)
    )
    python, checked = both(schema, ("id", "x"))
    # When any cell is checked both ways, Then the ValidRow or the message is the same
    cells = ["k", data.draw(cells_of(kind))]
    assert checked.validate(cells) == python.validate(cells)


MIXED = parse_schema(
    {
        "fields": [{"name": f"f_{kind}", "type": kind} for kind in FIELD_TYPES]
        + [{"name": f"r_{kind}", "type": kind, "required": True} for kind in FIELD_TYPES],
        "key": ["r_email", "r_integer", "r_string", "r_boolean", "r_decimal", "r_date"],
    }
)


@settings(max_examples=400, deadline=None)
@given(st.permutations(MIXED.field_names()), st.data())
def test_any_row_gives_what_the_python_path_gives(order: list[str], data: st.DataObject) -> None:
    # Given the fields in any order and a row of any cells, sometimes too short or too long
    present = tuple(order)
    kinds = {f.name: f.type for f in MIXED.fields}
    cells: list[str | None] = [data.draw(cells_of(kinds[name])) for name in present]
    cells = [*cells, "x"][: len(cells) + data.draw(st.sampled_from([0, 0, 0, 0, -1, 1]))]
    python, checked = both(MIXED, present)
    # Then both ways give the same ValidRow (values and key) or the same message
    assert checked.validate(cells) == python.validate(cells)


def _never(cells: Any) -> Any:
    raise AssertionError(f"the row took the fallback: {cells!r}")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_rows_written_as_files_usually_write_them_take_no_fallback(data: st.DataObject) -> None:
    # Given the bench's kind of row: canonical text of every type, any case of emails and
    # booleans, empty optional cells
    usual = {
        "integer": st.integers(0, 2**63 - 1).map(str),
        "decimal": st.decimals(0, 10**9, places=2).map(str),
        "boolean": _cased(["true", "false", "yes", "no"]),
        "date": st.dates().map(date.isoformat),
        "datetime": st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat()),
        "email": st.from_regex(
            r"[A-Za-z0-9_+-]{1,9}(\.[A-Za-z0-9_+-]{1,9}){0,2}@[a-z0-9]{1,10}\.[A-Za-z]{2,4}",
            fullmatch=True,
        ),
        "string": st.text(min_size=1, max_size=20).filter(lambda t: not t.isspace()),
    }
    present = MIXED.field_names()
    fields = {f.name: f for f in MIXED.fields}
    cells = [
        data.draw(
            usual[fields[name].type]
            if fields[name].required
            else st.one_of(usual[fields[name].type], st.just(""))
        )
        for name in present
    ]
    plan = tuple((f.name, f.type, f.required) for f in MIXED.fields)
    checked = rowcheck.checked_rows(plan, MIXED.key, _never, ValidRow, lambda: None)
    # When checked by msgspec, Then no row needs the Python path, and the result is the same
    assert checked(cells) == RowValidator(MIXED, present, engine="python").validate(cells)


@pytest.mark.parametrize(
    ("cell", "value"),
    [("9007199254740993.0", 9007199254740993), ("10.000000000000000001", None), ("-0", 0)],
)
def test_an_integer_msgspec_reads_through_a_float_is_read_exactly(cell: str, value: Any) -> None:
    # msgspec reads '9007199254740993.0' as 9007199254740992 and '10.000000000000000001' as 10
    schema = DatasetSchema(
        fields=(Field(name="id", required=True), Field(name="n", type="integer")), key=("id",)
    )
    result = RowValidator(schema, ("id", "n"), engine="msgspec").validate(["k", cell])
    if value is None:
        assert result == f"field 'n': expected an integer, got {cell!r}"
    else:
        assert isinstance(result, ValidRow) and result.values["n"] == value


def test_a_validator_uses_python_alone_after_many_refused_rows() -> None:
    # Given a column written with a '+', which msgspec refuses on every row
    schema = DatasetSchema(fields=(Field(name="n", type="integer", required=True),), key=("n",))
    validator = RowValidator(schema, ("n",), engine="msgspec")
    python = RowValidator(schema, ("n",), engine="python").validate
    checked = validator.validate
    # When more rows than the limit are checked
    results = [validator.validate([f"+{i}"]) for i in range(rowcheck.GIVE_UP_AFTER + 5)]
    # Then every result is right, and the validator has switched to the Python function
    assert results == [ValidRow(f"[{i}]", {"n": i}) for i in range(rowcheck.GIVE_UP_AFTER + 5)]
    assert validator.validate is python and checked is not python


@pytest.mark.parametrize(
    "cell",
    [
        "2024-01-05t10:20:30",
        "2024-01-05 10:20:30",
        "2024-01-05T10:20:30+0200",
        "2024-01-05T10:20:30.1234567",
        "2024-01-05T10:20:30z",
    ],
)
def test_a_datetime_msgspec_reads_in_another_shape_is_ours_or_refused(cell: str) -> None:
    # msgspec takes 't', ' ', 'z' and '+0200', and rounds a seventh digit: only the converter
    # decides those
    schema = DatasetSchema(
        fields=(Field(name="id", required=True), Field(name="t", type="datetime")), key=("id",)
    )
    python, checked = both(schema, ("id", "t"))
    assert checked.validate(["k", cell]) == python.validate(["k", cell])


@pytest.mark.parametrize("cell", ["null", "NULL", "Null"])
def test_the_text_null_is_not_a_null(cell: str) -> None:
    # msgspec reads 'null' as None for an optional date, integer or decimal; ours refuses it
    schema = DatasetSchema(
        fields=(Field(name="id", required=True), Field(name="d", type="date")), key=("id",)
    )
    result = RowValidator(schema, ("id", "d"), engine="msgspec").validate(["k", cell])
    assert result == f"field 'd': expected a date (YYYY-MM-DD), got {cell!r}"
