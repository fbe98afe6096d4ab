"""Dataset schemas and row validation: every type's rules, every schema error, the row contract.

Over 400 lines on purpose: it is the contract of every field type's rules (events.coerce), case by case.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import coerce
from events.datasets import (
    FIELD_TYPES,
    DatasetSchema,
    Field,
    FieldType,
    KeyReader,
    RowValidator,
    SchemaError,
    ValidRow,
    parse_schema,
    schema_json,
)

TYPES_LISTED = "string, integer, decimal, boolean, date, datetime, email"


def validator(kind: FieldType, *, required: bool = False) -> RowValidator:
    """A dataset keyed by a string 'id' with one more field 'x' of the given type."""
    schema = DatasetSchema(
        fields=(Field(name="id", required=True), Field(name="x", type=kind, required=required)),
        key=("id",),
    )
    return RowValidator(schema, ("id", "x"))


def accepts(kind: FieldType, cell: str | None) -> Any:
    """The value field 'x' stores for `cell`; fails the test if the row is refused."""
    result = validator(kind).validate(["k", cell])
    assert isinstance(result, ValidRow), result
    return result.values["x"]


def refuses(kind: FieldType, cell: str | None, *, required: bool = False) -> str:
    """The message for `cell` in field 'x'; fails the test if the row passes."""
    result = validator(kind, required=required).validate(["k", cell])
    assert isinstance(result, str), result
    return result


# --- empty cells ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FIELD_TYPES)
@pytest.mark.parametrize("cell", [None, "", " ", "\t \n", "\u00a0"])
def test_an_empty_cell_is_null_in_every_type(kind: FieldType, cell: str | None) -> None:
    # Given an optional field, When its cell is empty or whitespace only, Then it stores null.
    assert accepts(kind, cell) is None


@pytest.mark.parametrize("kind", FIELD_TYPES)
@pytest.mark.parametrize("cell", [None, "", "   "])
def test_an_empty_required_cell_is_refused(kind: FieldType, cell: str | None) -> None:
    assert refuses(kind, cell, required=True) == "field 'x' is required"


def test_an_empty_key_cell_is_refused_though_not_marked_required() -> None:
    # Given a key field the schema does not mark required
    schema = DatasetSchema(
        fields=(Field(name="code", type="integer"), Field(name="n")), key=("code",)
    )
    # When its cell is empty, Then the row is refused as for a required field
    assert RowValidator(schema, ("code", "n")).validate(["  ", "x"]) == "field 'code' is required"


# --- string ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["Ann", "  Ann  Lee ", "a\nb", "Zoë 🙂", "x" * 65_535, "\x00"])
def test_a_string_is_kept_exactly_as_written(cell: str) -> None:
    assert accepts("string", cell) == cell


def test_a_string_longer_than_the_limit_is_refused() -> None:
    assert (
        refuses("string", "y" * 65_536)
        == "field 'x': text is 65536 characters long; the limit is 65535"
    )


def test_a_string_with_a_lone_surrogate_is_refused() -> None:
    assert (
        refuses("string", "a\ud800b")
        == "field 'x': text is not valid Unicode (it holds a lone surrogate)"
    )


# --- integer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        (" 42 ", 42),
        ("\u00a042\t", 42),
        ("007", 7),
        ("0", 0),
        ("-0", 0),
        ("42.0", 42),
        ("42.000", 42),
        ("4.2e1", 42),
        ("1E3", 1000),
        ("-3.0", -3),
        ("0e999", 0),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775807.0", 2**63 - 1),
    ],
)
def test_an_integer_accepts_digits_and_exactly_integral_numbers(cell: str, value: int) -> None:
    assert accepts("integer", cell) == value


@pytest.mark.parametrize(
    "cell",
    ["4.5", "abc", "true", "1_000", "٣", "0x10", "1,000", "inf", "NaN", "4.2e0", "--1", "1e-1"],
)
def test_an_integer_refuses_anything_else(cell: str) -> None:
    assert refuses("integer", cell) == f"field 'x': expected an integer, got {cell!r}"


@pytest.mark.parametrize(
    "cell", ["9223372036854775808", "-9223372036854775809", "1e19", "1e999999999"]
)
def test_an_integer_outside_64_bits_is_out_of_range(cell: str) -> None:
    assert refuses("integer", cell) == f"field 'x': {cell!r} is out of range for a 64-bit integer"


def test_a_huge_cell_is_quoted_short_in_the_message() -> None:
    # Given 5,000 digits, When refused, Then the message quotes 40 characters and the length
    message = refuses("integer", "1" * 5000)
    assert (
        message
        == f"field 'x': {'1' * 40!r}... (5000 characters) is out of range for a 64-bit integer"
    )


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_an_integer_round_trips_through_its_text(value: int) -> None:
    assert coerce.to_integer(str(value)) == value
    assert coerce.to_integer(f"{value}.0") == value


# --- decimal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("12.50", "12.50"),
        ("0", "0"),
        ("0.00", "0.00"),
        ("-3.5", "-3.5"),
        ("-0.5", "-0.5"),
        ("+3.5", "3.5"),
        ("007.5", "7.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1E+3", "1000"),
        ("1.5e-3", "0.0015"),
        ("-0", "0"),
        ("-0.00", "0.00"),
        ("0e5", "0"),
        (" 12.50 ", "12.50"),
        ("42", "42"),
        ("1e99", "1" + "0" * 99),
    ],
)
def test_a_decimal_is_stored_in_canonical_plain_notation(cell: str, stored: str) -> None:
    assert accepts("decimal", cell) == stored


@pytest.mark.parametrize(
    "cell", ["NaN", "sNaN", "Infinity", "-inf", "abc", "1,5", "1_000", "1.2.3", "٣", "0x1", "1e"]
)
def test_a_decimal_refuses_what_is_not_a_finite_number(cell: str) -> None:
    assert refuses("decimal", cell) == f"field 'x': expected a decimal number, got {cell!r}"


@pytest.mark.parametrize("cell", ["1e100", "-1e100", "1e-101", "0." + "0" * 101])
def test_a_decimal_beyond_100_digits_is_out_of_range(cell: str) -> None:
    assert refuses("decimal", cell) == (
        f"field 'x': {coerce.show(cell)} is out of range for a decimal "
        "(at most 100 digits before and after the point)"
    )


def _within_places(number: Decimal) -> bool:
    exponent = number.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -100


finite_decimals: st.SearchStrategy[Decimal] = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30
).filter(_within_places)


@given(finite_decimals)
def test_a_decimal_round_trips_with_its_value_and_is_canonical(number: Decimal) -> None:
    # Given any finite decimal written any way Decimal writes it (exponents included)
    stored = coerce.to_decimal(str(number))
    # Then the stored text has the same value, no exponent, and stores as itself again
    assert Decimal(stored) == number
    assert "e" not in stored.lower() and not stored.startswith("+")
    assert coerce.to_decimal(stored) == stored


@given(st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{0,4})?|-?\.[0-9]{1,3}", fullmatch=True))
def test_the_decimal_fast_path_agrees_with_the_general_parse(cell: str) -> None:
    assert coerce.to_decimal(cell) == coerce._canonical_decimal(cell)


# --- boolean --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", ["true", "TRUE", "True", "t", "T", "yes", "YES", "y", "Y", "1", " yes "]
)
def test_a_boolean_accepts_true_spellings(cell: str) -> None:
    assert accepts("boolean", cell) is True


@pytest.mark.parametrize("cell", ["false", "FALSE", "f", "no", "No", "n", "N", "0", "\tfalse\n"])
def test_a_boolean_accepts_false_spellings(cell: str) -> None:
    assert accepts("boolean", cell) is False


@pytest.mark.parametrize("cell", ["maybe", "2", "on", "off", "1.0", "tru"])
def test_a_boolean_refuses_other_words(cell: str) -> None:
    assert (
        refuses("boolean", cell)
        == f"field 'x': expected a boolean (true/false, yes/no, 1/0), got {cell!r}"
    )


# --- date -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "2024-01-05",
        " 2024-01-05 ",
        "2024-01-05T00:00:00",
        "2024-01-05 00:00",
        "2024-01-05T00:00:00.000",
    ],
)
def test_a_date_accepts_the_day_and_a_spreadsheet_midnight(cell: str) -> None:
    assert accepts("date", cell) == "2024-01-05"


@pytest.mark.parametrize(
    "cell",
    ["2024/01/05", "20240105", "2024-W01-1", "05.01.2024", "2024-1-5", "today", "２０２４-01-05"],
)
def test_a_date_refuses_other_shapes(cell: str) -> None:
    assert refuses("date", cell) == f"field 'x': expected a date (YYYY-MM-DD), got {cell!r}"


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("2024-02-30", "day is out of range for month"),
        ("2024-13-01", "month must be in 1..12"),
        ("0000-01-01", "year 0 is out of range"),
    ],
)
def test_a_date_that_does_not_exist_is_refused(cell: str, why: str) -> None:
    assert refuses("date", cell) == f"field 'x': {cell!r} is not a valid date: {why}"


@pytest.mark.parametrize(
    "cell",
    [
        "2024-01-05T10:20:30",
        "2024-01-05T00:00:01",
        "2024-01-05T00:00:00Z",
        "2024-01-05T00:00+01:00",
    ],
)
def test_a_date_refuses_a_time_of_day_or_an_offset(cell: str) -> None:
    assert (
        refuses("date", cell)
        == f"field 'x': expected a date (YYYY-MM-DD) without a time of day, got {cell!r}"
    )


@given(st.dates())
def test_every_date_round_trips(day: date) -> None:
    assert coerce.to_date(day.isoformat()) == day.isoformat()
    assert coerce.to_date(f"{day.isoformat()}T00:00:00") == day.isoformat()


# --- datetime -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("2024-01-05T10:20:30", "2024-01-05T10:20:30"),
        ("2024-01-05 10:20:30", "2024-01-05T10:20:30"),
        (" 2024-01-05T10:20:30 ", "2024-01-05T10:20:30"),
        ("2024-01-05T10:20", "2024-01-05T10:20:00"),
        ("2024-01-05T10:20:30.5", "2024-01-05T10:20:30.500000"),
        ("2024-01-05T10:20:30.000", "2024-01-05T10:20:30"),
        ("2024-01-05", "2024-01-05T00:00:00"),
        ("2024-01-05T10:20:30Z", "2024-01-05T10:20:30Z"),
        ("2024-01-05T10:20:30+02:00", "2024-01-05T08:20:30Z"),
        ("2024-01-05T00:30:00+01:00", "2024-01-04T23:30:00Z"),
        ("2024-01-05T10:20:30.25-05:30", "2024-01-05T15:50:30.250000Z"),
        ("2024-01-05 10:20-00:00", "2024-01-05T10:20:00Z"),
    ],
)
def test_a_datetime_is_stored_as_iso_text_naive_or_utc(cell: str, stored: str) -> None:
    assert accepts("datetime", cell) == stored


@pytest.mark.parametrize(
    "cell",
    [
        "2024-01-05T10",
        "20240105T102030",
        "2024-01-05T10:20:30.1234567",
        "2024-01-05x10:20:30",
        "2024-01-05T10:20:30+0200",
        "2024-01-05T10:20:30z",
        "2024-W01-1T10:20",
        "2024-W01-1T10:20:30",
        "yesterday",
    ],
)
def test_a_datetime_refuses_other_shapes(cell: str) -> None:
    assert refuses("datetime", cell) == (
        "field 'x': expected a date and time (YYYY-MM-DDTHH:MM[:SS], optionally ending in Z or "
        f"±HH:MM), got {cell!r}"
    )


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("2024-13-01T00:00", "is not a valid date and time: month must be in 1..12"),
        ("2024-01-05T24:00", "is not a valid date and time: hour must be in 0..23"),
        ("2024-01-05T10:20:60", "is not a valid date and time: second must be in 0..59"),
        (
            "2024-01-05T10:20+05:75",
            "is not a valid date and time: the UTC offset must be within ±23:59",
        ),
        (
            "2024-01-05T10:20+24:00",
            "is not a valid date and time: the UTC offset must be within ±23:59",
        ),
        ("0001-01-01T00:00:00+01:00", "is out of range once converted to UTC"),
    ],
)
def test_a_datetime_that_does_not_exist_is_refused(cell: str, why: str) -> None:
    assert refuses("datetime", cell) == f"field 'x': {cell!r} {why}"


OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), OFFSETS)))
def test_every_datetime_round_trips(moment: datetime) -> None:
    # Given any datetime, naive or aware with an offset in whole minutes
    offset = moment.utcoffset()
    try:
        expected = (
            moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
            if offset is not None
            else moment.isoformat()
        )
    except OverflowError:
        return  # outside the representable range once in UTC: refused, as tested above
    # When written as ISO text and stored, Then it is the same instant, canonically written
    assert coerce.to_datetime(moment.isoformat()) == expected


@given(st.text(alphabet="0123456789-T :.Z+Wx", min_size=16, max_size=32))
def test_the_datetime_fast_path_agrees_with_the_general_parse(cell: str) -> None:
    fast = _outcome(coerce.to_datetime, cell)
    assert fast == _outcome(coerce._any_datetime, cell)


def _outcome(convert: Any, cell: str) -> Any:
    try:
        return convert(cell)
    except coerce.CellError as exc:
        return ("error", str(exc))


# --- email ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  ann@example.com ", "ann@example.com"),
        (
            "first.last+tag@mail.sub-domain.example.co.uk",
            "first.last+tag@mail.sub-domain.example.co.uk",
        ),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("a@b.co", "a@b.co"),
        ("user@xn--80ak6aa92e.xn--p1ai", "user@xn--80ak6aa92e.xn--p1ai"),
        ("x" * 64 + "@" + "d" * 63 + ".com", "x" * 64 + "@" + "d" * 63 + ".com"),
    ],
)
def test_an_email_is_stripped_and_lowercased(cell: str, stored: str) -> None:
    assert accepts("email", cell) == stored


@pytest.mark.parametrize(
    "cell",
    [
        "not-an-email",
        "a@b",
        "a@@b.com",
        "a@b@c.com",
        "a b@c.com",
        "a@b.c",
        ".a@b.com",
        "a.@b.com",
        "a..b@c.com",
        "a@-b.com",
        "a@b-.com",
        "a@b..com",
        "a@.b.com",
        "a@b.com.",
        "a@1.2.3.4",
        "a@b.c0-",
        "@b.com",
        "ann@exämple.com",
        "\u212aim@example.com",  # the Kelvin sign lowercases to an ASCII 'k'
        'a"b@c.com',
    ],
)
def test_an_email_refuses_what_is_not_an_address(cell: str) -> None:
    assert refuses("email", cell) == f"field 'x': {cell!r} is not a valid email address"


def test_an_email_past_the_length_limits_says_which() -> None:
    local, label = "x" * 65 + "@example.com", "a@" + "d" * 64 + ".com"
    total = "a@" + ".".join(["d" * 60] * 5) + ".com"
    assert refuses("email", local).endswith(
        "is not a valid email address (the part before @ is longer than 64)"
    )
    assert refuses("email", label).endswith(
        "is not a valid email address (a domain label is longer than 63)"
    )
    assert refuses("email", total).endswith(
        "is not a valid email address (longer than 254 characters)"
    )


_ATEXT = "[a-z0-9!#$%&'*+/=?^_`{|}~-]"
# An independent statement of the address grammar, without the possessive speed-ups.
_REFERENCE_EMAIL = re.compile(
    rf"{_ATEXT}+(\.{_ATEXT}+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]([a-z0-9-]*[a-z0-9])"
)


@given(st.text(alphabet="aZ09.-@_+'x ", max_size=24))
def test_the_email_grammar_matches_its_reference(cell: str) -> None:
    text = cell.strip().lower()
    outcome = _outcome(coerce.to_email, cell)
    if _REFERENCE_EMAIL.fullmatch(text):
        assert outcome == text
    else:
        assert outcome == ("error", f"{cell!r} is not a valid email address")


# --- RowValidator ---------------------------------------------------------------------------

CONTACTS = parse_schema(
    {
        "fields": [
            {"name": "email", "type": "email"},
            {"name": "name", "required": True},
            {"name": "age", "type": "integer"},
        ],
        "key": ["email"],
    }
)


def test_a_valid_row_holds_the_present_fields_and_the_key() -> None:
    # Given a source supplying email and age only (name is required, so supply it too)
    rows = RowValidator(CONTACTS, ("age", "email", "name"))
    # When a row is validated
    result = rows.validate(["31", "Ann@Example.com", "Ann"])
    # Then the values follow the present fields and the key is canonical
    assert result == ValidRow(
        '["ann@example.com"]', {"age": 31, "email": "ann@example.com", "name": "Ann"}
    )


def test_values_cover_present_fields_only() -> None:
    result = RowValidator(CONTACTS, ("email", "name")).validate(["a@b.co", "A"])
    assert isinstance(result, ValidRow) and result.values == {"email": "a@b.co", "name": "A"}


def test_a_present_name_that_is_no_field_is_refused() -> None:
    with pytest.raises(
        SchemaError, match=r"^unknown field 'nope'; the dataset has: email, name, age$"
    ):
        RowValidator(CONTACTS, ("email", "name", "nope"))


def test_a_present_name_given_twice_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"^field 'name' is supplied twice$"):
        RowValidator(CONTACTS, ("email", "name", "name"))


def test_missing_key_and_required_columns_are_named_in_schema_order() -> None:
    with pytest.raises(SchemaError, match=r"^missing required columns: email, name$"):
        RowValidator(CONTACTS, ("age",))


def test_a_hand_built_inconsistent_schema_is_refused() -> None:
    schema = DatasetSchema(fields=(Field(name="a"),), key=("b",))
    with pytest.raises(SchemaError, match="inconsistent"):
        RowValidator(schema, ("a",))


def test_a_short_row_is_padded_with_nulls() -> None:
    rows = RowValidator(CONTACTS, ("email", "name", "age"))
    assert rows.validate(["a@b.co", "A"]) == ValidRow(
        '["a@b.co"]', {"email": "a@b.co", "name": "A", "age": None}
    )
    assert rows.validate(["a@b.co"]) == "field 'name' is required"
    assert rows.validate([]) == "field 'email' is required"


def test_a_long_row_is_refused() -> None:
    rows = RowValidator(CONTACTS, ("email", "name", "age"))
    assert rows.validate(["a@b.co", "A", "1", "x", None]) == "row has 5 values, expected 3"


def test_the_first_bad_field_in_present_order_is_reported() -> None:
    rows = RowValidator(CONTACTS, ("email", "name", "age"))
    assert (
        rows.validate(["nope", None, "x"]) == "field 'email': 'nope' is not a valid email address"
    )
    assert rows.validate(["a@b.co", None, "x"]) == "field 'name' is required"
    assert rows.validate(["a@b.co", "A", "x"]) == "field 'age': expected an integer, got 'x'"


def test_a_validator_accepts_tuples_and_field_names_with_odd_characters() -> None:
    # A hand-built schema is not checked by parse_schema: names reach the generated code as data.
    odd = "x'] = 1; import os #\"\n"
    schema = DatasetSchema(fields=(Field(name=odd, required=True),), key=(odd,))
    assert RowValidator(schema, (odd,)).validate(("v",)) == ValidRow('["v"]', {odd: "v"})
    assert RowValidator(schema, (odd,)).validate((None,)) == f"field {odd!r} is required"


# --- keys -----------------------------------------------------------------------------------


def test_emails_differing_in_case_make_one_key() -> None:
    rows = RowValidator(CONTACTS, ("email", "name"))
    keys = {
        r.key
        for r in (rows.validate([e, "A"]) for e in ("ANN@x.com", "ann@x.com", " Ann@X.Com "))
        if isinstance(r, ValidRow)
    }
    assert keys == {'["ann@x.com"]'}


def test_integers_written_differently_make_one_key() -> None:
    schema = parse_schema({"fields": [{"name": "n", "type": "integer"}], "key": ["n"]})
    rows = RowValidator(schema, ("n",))
    keys = {
        r.key
        for r in (rows.validate([c]) for c in ("7", "007", " 7 ", "7.0", "+7"))
        if isinstance(r, ValidRow)
    }
    assert keys == {"[7]"}


def test_a_composite_key_follows_key_order_not_column_order() -> None:
    schema = parse_schema(
        {"fields": [{"name": "code"}, {"name": "n", "type": "integer"}], "key": ["n", "code"]}
    )
    result = RowValidator(schema, ("code", "n")).validate(["x", "42"])
    assert isinstance(result, ValidRow) and result.key == '[42,"x"]'


@pytest.mark.parametrize(
    ("kind", "cell"),
    [
        ("string", 'he said "hi"\\\n\t\x01 é 🙂 </'),
        ("boolean", "yes"),
        ("decimal", "-1.50"),
        ("date", "2024-01-05"),
        ("datetime", "2024-01-05T10:20:30+01:00"),
        ("email", "a.b+c!#$%&'*/=?^_`{|}~-@x.co"),
        ("integer", "-9223372036854775808"),
    ],
)
def test_each_type_writes_its_key_as_json(kind: FieldType, cell: str) -> None:
    schema = DatasetSchema(fields=(Field(name="k", type=kind),), key=("k",))
    result = RowValidator(schema, ("k",)).validate([cell])
    assert isinstance(result, ValidRow)
    assert result.key == msgspec.json.encode([result.values["k"]]).decode()


# --- properties over any row ----------------------------------------------------------------

MIXED = parse_schema(
    {
        "fields": [{"name": f"f_{kind}", "type": kind} for kind in FIELD_TYPES]
        + [{"name": "req", "type": "integer", "required": True}],
        "key": ["f_email", "req", "f_string", "f_boolean"],
    }
)
JUNK = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        ["", " ", "-0", "4.2e1", "N", "2024-01-05 00:00:00+01:00", "1e999999999", "x@y"]
    ),
    st.from_regex(r"[0-9 .eE+-]{1,12}", fullmatch=True),
)
# Cells a field of each type mostly accepts, in the many ways files write them.
LIKELY: dict[str, st.SearchStrategy[str | None]] = {
    "string": st.text(min_size=1, max_size=10).filter(lambda text: not text.isspace()),
    "integer": st.one_of(
        st.integers(-(2**63), 2**63 - 1).map(str), st.sampled_from(["007", " 4 ", "4.0"])
    ),
    "decimal": st.decimals(
        allow_nan=False, allow_infinity=False, places=3, max_value=10**9, min_value=-(10**9)
    ).map(str),
    "boolean": st.sampled_from([*coerce.BOOLEANS, "TRUE", " No "]),
    "date": st.dates().map(date.isoformat),
    "datetime": st.datetimes(timezones=st.one_of(st.none(), OFFSETS)).map(
        lambda d: d.isoformat(sep=" ")
    ),
    "email": st.from_regex(r"[A-Za-z0-9._%+'-]{1,8}@[a-z0-9-]{1,6}\.[A-Za-z]{2,4}", fullmatch=True),
}


def row_of(schema: DatasetSchema, present: tuple[str, ...]) -> st.SearchStrategy[list[str | None]]:
    """Rows for `present`: likely cells, often one junk cell, now and then too short or long."""
    kinds = {f.name: f.type for f in schema.fields}
    likely = st.tuples(*(LIKELY[kinds[name]] for name in present)).map(list)
    junk = st.one_of(st.none(), st.tuples(st.integers(0, len(present) - 1), JUNK))
    resize = st.sampled_from([0, 0, 0, 0, 0, -1, -2, 1])

    def build(
        cells: list[str | None], stray: tuple[int, str | None] | None, delta: int
    ) -> list[str | None]:
        if stray is not None:
            cells[stray[0]] = stray[1]
        return [*cells, "x"][: len(present) + delta]

    return st.builds(build, likely, junk, resize)


def _reference(
    schema: DatasetSchema, present: tuple[str, ...], cells: list[str | None]
) -> ValidRow | str:
    """The rules as a plain loop over the converters, to check the generated code against."""
    if len(cells) > len(present):
        return f"row has {len(cells)} values, expected {len(present)}"
    cells = cells + [None] * (len(present) - len(cells))
    fields = {f.name: f for f in schema.fields}
    values: dict[str, Any] = {}
    for name, cell in zip(present, cells, strict=True):
        if cell is None or not cell.strip():
            if fields[name].required or name in schema.key:
                return f"field {name!r} is required"
            values[name] = None
            continue
        try:
            values[name] = coerce.CONVERTERS[fields[name].type](cell)
        except coerce.CellError as exc:
            return f"field {name!r}: {exc}"
    return ValidRow(msgspec.json.encode([values[k] for k in schema.key]).decode(), values)


@settings(max_examples=250, deadline=None)
@given(st.permutations(MIXED.field_names()), st.data())
def test_any_row_gives_a_row_or_a_message_exactly_as_the_reference_loop(
    order: list[str], data: st.DataObject
) -> None:
    # Given the fields in any column order and any cells, sometimes too few or too many
    present = tuple(order)
    cells = data.draw(row_of(MIXED, present))
    # When validated, Then nothing raises and the outcome is the reference loop's
    result = RowValidator(MIXED, present).validate(cells)
    assert isinstance(result, ValidRow | str)
    assert result == _reference(MIXED, present, cells)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=10))
def test_any_cells_whatever_give_a_row_or_a_message(cells: list[str | None]) -> None:
    result = RowValidator(MIXED, MIXED.field_names()).validate(cells)
    assert isinstance(result, ValidRow | str)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_stored_values_validate_to_themselves(data: st.DataObject) -> None:
    # Given a row that passed, When its stored values are written back as text and validated
    present = MIXED.field_names()
    first = RowValidator(MIXED, present).validate(data.draw(row_of(MIXED, present)))
    if isinstance(first, str):
        return
    text = [
        None if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        for v in first.values.values()
    ]
    # Then the same row comes back: every stored form is canonical
    assert RowValidator(MIXED, present).validate(text) == first


# --- parse_schema ---------------------------------------------------------------------------


def test_a_schema_document_parses_with_defaults_and_required_keys() -> None:
    # Given a document whose key field does not say it is required
    doc = b'{"fields": [{"name": "email", "type": "email"}, {"name": "note"}], "key": ["email"]}'
    # When parsed, Then defaults fill in and the key field is required
    schema = parse_schema(doc)
    assert schema == DatasetSchema(
        fields=(Field(name="email", type="email", required=True), Field(name="note")),
        key=("email",),
    )
    assert schema.field_names() == ("email", "note")


def test_a_schema_parses_from_text_bytes_and_mappings_alike() -> None:
    doc = {"fields": [{"name": "a", "type": "integer", "required": False}], "key": ["a"]}
    assert (
        parse_schema(doc)
        == parse_schema(msgspec.json.encode(doc))
        == parse_schema(msgspec.json.encode(doc).decode())
    )


def test_schema_json_is_canonical_and_round_trips() -> None:
    schema = parse_schema(
        {"key": ["email"], "fields": [{"type": "email", "name": "email"}, {"name": "n"}]}
    )
    assert schema_json(schema) == (
        b'{"fields":[{"name":"email","type":"email","required":true},'
        b'{"name":"n","type":"string","required":false}],"key":["email"]}'
    )
    assert parse_schema(schema_json(schema)) == schema


def test_a_schema_of_200_fields_is_allowed() -> None:
    doc = {"fields": [{"name": f"f{i}"} for i in range(200)], "key": ["f0"]}
    assert len(parse_schema(doc).fields) == 200


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "fields": [{"name": "email", "type": "email"}, {"name": "age", "type": "integer"}],
        "key": ["email"],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "the schema is not valid JSON: "),
        ("not json", "the schema is not valid JSON: "),
        (
            b"[]",
            'the schema must be a JSON object like {"fields": [...], "key": [...]}, got an array',
        ),
        (
            b'"x"',
            'the schema must be a JSON object like {"fields": [...], "key": [...]}, got a string',
        ),
        (_doc(extra=1), "the schema has an unknown property 'extra'; allowed: fields, key"),
        ({"key": ["a"]}, 'the schema has no "fields"; give a list like [{"name": "email"}]'),
        (
            _doc(fields={"name": "a"}),
            'the schema\'s "fields" must be a list of objects, got an object',
        ),
        (_doc(fields=[]), "the schema has no fields; define at least one"),
        (
            _doc(fields=[{"name": f"f{i}"} for i in range(201)]),
            "the schema has 201 fields; the limit is 200",
        ),
        (_doc(fields=["email"]), 'field #1 must be an object like {"name": "email"}, got a string'),
        (_doc(fields=[{"type": "email"}]), 'field #1 needs a "name": a non-empty string'),
        (_doc(fields=[{"name": ""}]), 'field #1 needs a "name": a non-empty string'),
        (_doc(fields=[{"name": 7}]), 'field #1 needs a "name": a non-empty string'),
        (
            _doc(fields=[{"name": "email", "nullable": True}]),
            "field #1 ('email') has an unknown property 'nullable'; allowed: name, type, required",
        ),
        (
            _doc(fields=[{"name": "email"}, {"name": "Email"}]),
            "field names 'email' and 'Email' differ only in case; rename one",
        ),
        (_doc(fields=[{"name": "email"}, {"name": "email"}]), "field name 'email' is used twice"),
        (
            _doc(fields=[{"name": "email", "type": "int"}]),
            f"field 'email' has unknown type 'int'; allowed types: {TYPES_LISTED}",
        ),
        (
            _doc(fields=[{"name": "email", "required": "yes"}]),
            "field 'email': \"required\" must be true or false, not a string",
        ),
        (
            {"fields": [{"name": "a"}]},
            'the schema has no "key"; name the fields that identify a record: ["email"]',
        ),
        (_doc(key="email"), 'the schema\'s "key" must be a list of field names, got a string'),
        (_doc(key=["email", 1]), "the schema's key must list field names, got a number 1"),
        (_doc(key=[]), "the schema's key is empty; name the fields that identify a record"),
        (_doc(key=["id"]), "the key names unknown field 'id'; the fields are: email, age"),
        (_doc(key=["Email"]), "the key names unknown field 'Email'; did you mean 'email'?"),
        (_doc(key=["email", "age", "email"]), "the key names field 'email' twice"),
    ],
)
def test_each_schema_problem_has_its_own_message(raw: Any, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        parse_schema(raw)
    assert (
        str(caught.value).startswith(message)
        if message.endswith(": ")
        else str(caught.value) == message
    )


@pytest.mark.parametrize("name", ["first name", "1abc", "x" * 64, "é", "a-b", "a.b", " a"])
def test_a_field_name_outside_the_pattern_is_refused(name: str) -> None:
    with pytest.raises(SchemaError) as caught:
        parse_schema({"fields": [{"name": name}], "key": [name]})
    assert str(caught.value) == (
        f"field name {name!r} is not allowed; use 1 to 63 ASCII letters, digits or underscores, "
        "not starting with a digit"
    )


@pytest.mark.parametrize("name", ["a", "_", "A1_b", "x" * 63, "_9"])
def test_a_field_name_inside_the_pattern_is_accepted(name: str) -> None:
    assert parse_schema({"fields": [{"name": name}], "key": [name]}).key == (name,)


def test_key_reader_reads_the_key_of_a_row_that_failed_validation() -> None:
    schema = parse_schema({"fields": [{"name": "email", "type": "email"}, {"name": "age", "type": "integer"},
                                      {"name": "id", "type": "integer"}], "key": ["id", "email"]})
    present = ("email", "age", "id")
    validate = RowValidator(schema, present).validate
    read_key = KeyReader(schema, present)
    bad_age = ["Ann@Example.com", "old", "7"]
    assert isinstance(validate(bad_age), str)
    assert read_key(bad_age) == '[7,"ann@example.com"]' == validate(["Ann@Example.com", "3", "7"]).key  # type: ignore[union-attr]
    assert read_key(["ann@example.com", "1", "7", "stray"]) == '[7,"ann@example.com"]'  # too long: key still readable
    assert read_key(["ann@example.com", "old"]) is None  # short: a key cell is missing
    assert read_key(["not-an-email", "1", "7"]) is None  # a key cell is itself invalid
    assert KeyReader(schema, ("email", "age"))(["ann@example.com", "1"]) is None  # the source lacks a key field
