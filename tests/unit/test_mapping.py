"""Source columns to fields: Given a schema, an import's spec and the first row, When resolved, Then the columns."""

from __future__ import annotations

import pytest

from events.datasets import SchemaError, parse_schema
from events.mapping import Columns, resolve_columns
from events.types import ImportSpec

SCHEMA = parse_schema(
    {
        "fields": [
            {"name": "email", "type": "email", "required": True},
            {"name": "Name", "type": "string"},
            {"name": "age", "type": "integer"},
        ],
        "key": ["email"],
    }
)


def spec(**fields: object) -> ImportSpec:
    return ImportSpec(dataset="contacts", **fields)  # type: ignore[arg-type]


def test_header_names_match_fields_ignoring_case_and_spaces_and_unknown_columns_are_reported() -> None:
    got = resolve_columns(SCHEMA, spec(), ["note", " EMAIL ", "", None, "name", "Age"])
    assert got == Columns(fields=("email", "Name", "age"), indices=(1, 4, 5), ignored=("note",), width=6)


def test_a_header_that_names_a_field_twice_is_refused_with_both_columns() -> None:
    with pytest.raises(SchemaError, match=r"^header names column 'Email' twice \(columns 1 and 3\)$"):
        resolve_columns(SCHEMA, spec(), ["email", "age", "Email"])


def test_a_header_that_matches_no_field_is_refused_with_the_fields_expected() -> None:
    with pytest.raises(SchemaError, match="matches no field of the dataset; expected some of: email, Name, age$"):
        resolve_columns(SCHEMA, spec(), ["foo", "bar"])


def test_without_a_header_columns_feed_fields_by_position_as_far_as_both_go() -> None:
    assert resolve_columns(SCHEMA, spec(headers=False), ["a@x.io", "Ann"]) == Columns(("email", "Name"), (0, 1))
    assert resolve_columns(SCHEMA, spec(headers=False), ["a", "b", "c", "d"]) == Columns(("email", "Name", "age"), (0, 1, 2))


def test_explicit_mappings_win_over_the_header_and_keep_its_width() -> None:
    got = resolve_columns(SCHEMA, spec(mappings={"AGE": 0, "email": 3}), ["x", "y", "z", "w"])
    assert got == Columns(fields=("age", "email"), indices=(0, 3), ignored=(), width=4)
    headerless = resolve_columns(SCHEMA, spec(mappings={"email": 1}, headers=False), ["1", "a@x.io"])
    assert headerless == Columns(fields=("email",), indices=(1,), ignored=(), width=None)


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        ({"phone": 0}, "mapping names unknown field 'phone'; the dataset has: email, Name, age"),
        ({"email": 0, "EMAIL": 1}, "mapping names field 'email' twice"),
        ({"email": -1}, "mapping for 'email' must be a column index >= 0, got -1"),
        ({"email": True}, "mapping for 'email' must be a column index >= 0, got True"),
    ],
)
def test_mappings_that_cannot_be_followed_are_refused(mappings: dict[str, int], message: str) -> None:
    with pytest.raises(SchemaError) as refused:
        resolve_columns(SCHEMA, spec(mappings=mappings), ["a", "b"])
    assert str(refused.value) == message
