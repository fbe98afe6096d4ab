"""Loose caller inputs to ImportSpec parts: Given a form, query or JSON value, When parsed, Then the value or a precise 400."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import BadRequest
from app.spec import parse_bool, parse_mappings, parse_separator, parse_threshold


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, (None, None)),
        ("", (None, None)),
        (5, (5, None)),
        (" 12 ", (12, None)),
        ("0", (0, None)),
        ("5%", (None, 5.0)),
        (" 2.5 % ", (None, 2.5)),
    ],
)
def test_a_threshold_is_a_count_or_a_percentage(given: Any, expected: tuple[int | None, float | None]) -> None:
    assert parse_threshold(given) == expected


def test_zero_means_no_threshold_only_where_the_dialect_says_so() -> None:
    assert parse_threshold(0) == (0, None)
    assert parse_threshold(0, zero_means_none=True) == (None, None)
    assert parse_threshold("0", zero_means_none=True) == (None, None)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (True, 'errorThreshold must be an integer or a percentage like "5%"'),
        ("many", "threshold must be an integer or a percentage like \"5%\", got 'many'"),
        (1.5, 'threshold must be an integer or a percentage like "5%", got 1.5'),
        (-1, "threshold must not be negative, got -1"),
        ("-3", "threshold must not be negative, got -3"),
        ("0%", "a percentage threshold must be between 0% and 100% exclusive, got '0%'"),
        ("100%", "a percentage threshold must be between 0% and 100% exclusive, got '100%'"),
    ],
)
def test_a_threshold_that_is_neither_is_a_400_naming_the_field(given: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_threshold(given)
    assert (refused.value.status, refused.value.message, refused.value.field) == (400, message, "errorThreshold")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None), (",", ","), ("\t", "\t"), ("\\t", "\t"), ("TAB", "\t"), ("|", "|"), (";", ";")],
)
def test_a_separator_is_one_of_four_by_any_of_its_spellings(given: str | None, expected: str | None) -> None:
    assert parse_separator(given) == expected


def test_any_other_separator_is_a_400() -> None:
    with pytest.raises(BadRequest, match=r"^separator must be one of ',', '\\t', '\|', ';', got ':'$") as refused:
        parse_separator(":")
    assert refused.value.field == "separator"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, True), ("", True), (False, False), ("yes", True), (" ON ", True), ("1", True), ("off", False), ("No", False), ("0", False)],
)
def test_a_boolean_field_reads_the_usual_words_and_defaults_when_absent(given: str | bool | None, expected: bool) -> None:
    assert parse_bool(given, "headers", default=True) is expected


def test_any_other_boolean_word_is_a_400_naming_the_field() -> None:
    with pytest.raises(BadRequest, match="^headers must be true or false, got 'maybe'$") as refused:
        parse_bool("maybe", "headers", default=True)
    assert refused.value.field == "headers"


@pytest.mark.parametrize(
    "given",
    [
        {"email": 0, "age": 2},
        [{"email": 0}, {"age": 2}],
        '{"email": 0, "age": 2}',
        '[{"email": 0}, {"age": 2}]',
    ],
)
def test_mappings_come_as_an_object_a_list_of_pairs_or_either_as_json(given: Any) -> None:
    assert parse_mappings(given) == {"email": 0, "age": 2}


def test_no_mappings_are_none() -> None:
    assert parse_mappings(None) is None
    assert parse_mappings("") is None
    assert parse_mappings({}) is None
    assert parse_mappings([]) is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{email: 0}", 'mappings must be JSON: {"field": column_index, ...}'),
        (7, "mappings must be an object or a list of one-key objects"),
        ([{"email": 0, "age": 1}], 'each mapping must be an object with one field: {"email": 0}'),
        (["email"], 'each mapping must be an object with one field: {"email": 0}'),
        ({"email": "0"}, "mapping 'email' must give a column index >= 0, got '0'"),
        ({"email": -2}, "mapping 'email' must give a column index >= 0, got -2"),
        ({"email": False}, "mapping 'email' must give a column index >= 0, got False"),
        ([{"email": 0}, {"email": 1}], "mapping names field 'email' twice"),
    ],
)
def test_mappings_that_cannot_be_read_are_a_400_naming_the_field(given: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_mappings(given)
    assert (refused.value.message, refused.value.field) == (message, "mappings")
