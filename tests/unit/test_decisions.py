"""Write semantics and thresholds, decided from plain values (no I/O)."""

from __future__ import annotations

from events.datasets import ValidRow
from events.decisions import decide_chunk, failure_budget, threshold_verdict
from events.types import ImportSpec


def row(i: int, key: str, **values: object) -> tuple[int, int, ValidRow]:
    return (i, i + 2, ValidRow(key, dict(values)))


def test_insert_creates_new_keys_and_fails_duplicates_in_db_and_in_file() -> None:
    existing = {'["a"]': {"name": "A"}}
    rows = [row(0, '["a"]', name="A2"), row(1, '["b"]', name="B"), row(2, '["b"]', name="B2")]
    d = decide_chunk(rows, existing, "insert", 0, None)
    assert d.runs == [("f", 1), ("c", 1), ("f", 1)]
    assert [f.index for f in d.failures] == [0, 2]
    assert "duplicate key" in d.failures[0].message
    assert [(w.key, w.values, w.new) for w in d.writes] == [('["b"]', {"name": "B"}, True)]


def test_update_merges_missing_fields_and_counts_unchanged() -> None:
    existing = {'["a"]': {"name": "A", "age": 3}, '["b"]': {"name": "B", "age": 4}}
    rows = [row(0, '["a"]', age=5), row(1, '["b"]', age=4), row(2, '["c"]', age=1)]
    d = decide_chunk(rows, existing, "update", 0, None)
    assert d.runs == [("u", 1), ("n", 1), ("c", 1)]
    writes = {w.key: w for w in d.writes}
    assert writes['["a"]'].values == {"name": "A", "age": 5} and not writes['["a"]'].new
    assert writes['["c"]'].new and '["b"]' not in writes


def test_replace_overwrites_the_whole_record() -> None:
    existing = {'["a"]': {"name": "A", "age": 3}}
    d = decide_chunk([row(0, '["a"]', age=3)], existing, "replace", 0, None)
    assert d.runs == [("u", 1)]
    assert d.writes[0].values == {"age": 3}


def test_ignore_skips_existing_keys() -> None:
    existing = {'["a"]': {"name": "A"}}
    d = decide_chunk([row(0, '["a"]', name="Z"), row(1, '["b"]', name="B")], existing, "ignore", 0, None)
    assert d.runs == [("i", 1), ("c", 1)]
    assert [w.key for w in d.writes] == ['["b"]']


def test_a_second_row_for_a_created_key_updates_it_and_keeps_one_insert() -> None:
    d = decide_chunk([row(0, '["a"]', age=1), row(1, '["a"]', age=2)], {}, "update", 0, None)
    assert d.runs == [("c", 1), ("u", 1)]
    assert len(d.writes) == 1 and d.writes[0].new and d.writes[0].values == {"age": 2} and d.writes[0].index == 0


def test_invalid_rows_fail_with_their_message() -> None:
    rows = [(0, 2, "line 2: field 'age': expected an integer, got 'x'"), row(1, '["b"]')]
    d = decide_chunk(rows, {}, "update", 0, None)
    assert d.runs == [("f", 1), ("c", 1)]
    assert d.failures[0].message.startswith("line 2:")


def test_past_the_threshold_the_rest_of_the_rows_are_skipped() -> None:
    rows = [(0, 2, "bad"), (1, 3, "bad"), row(2, '["c"]'), (3, 5, "bad"), row(4, '["e"]')]
    d = decide_chunk(rows, {}, "update", 0, budget=2)
    assert d.runs == [("f", 2), ("c", 1), ("f", 1), ("s", 1)]
    assert d.exceeded and d.failed == 3


def test_failures_before_this_chunk_count_toward_the_threshold() -> None:
    d = decide_chunk([(10, 12, "bad"), row(11, '["x"]')], {}, "update", failed_before=5, budget=5)
    assert d.exceeded and d.runs == [("f", 1), ("s", 1)]


def test_percent_budget_and_verdict() -> None:
    spec = ImportSpec(dataset="d", threshold_percent=10.0)
    assert failure_budget(spec, 95) == 9
    assert not threshold_verdict(9, 9) and threshold_verdict(10, 9)
    assert failure_budget(ImportSpec(dataset="d"), 100) is None
    assert not threshold_verdict(10**9, None)


def test_failed_rows_whose_key_names_an_existing_record_are_failed_updates() -> None:
    existing = {'["a"]': {"age": 1}}
    rows = [
        (0, 2, "line 2: field 'age': not an integer"),  # key a: in the dataset -> failed update
        (1, 3, "line 3: field 'age': not an integer"),  # key z: nowhere -> failed create
        row(2, '["c"]', age=3),  # creates c ...
        (3, 5, "line 5: row has 4 values, expected 3"),  # ... so a failure on c is a failed update
        (4, 6, "line 6: field 'email' is required"),  # no readable key -> failed create
    ]
    d = decide_chunk(rows, existing, "update", 0, None, failed_keys={0: '["a"]', 1: '["z"]', 3: '["c"]'})
    assert d.runs == [("f", 2), ("c", 1), ("f", 2)]
    assert d.failed_existing == [0, 3]
    dup = decide_chunk([row(0, '["a"]', age=2)], existing, "insert", 0, None)
    assert dup.failed_existing == [0]  # an insert refused because the record exists names it too
    assert decide_chunk(rows, existing, "update", 0, None).failed_existing == []  # no keys read, none known


def test_insert_names_the_first_line_of_a_key_seen_earlier_in_the_file() -> None:
    existing = {'["a"]': {"name": "A"}, '["z"]': {"name": "Z"}}  # a: created by an earlier chunk; z: was there
    rows = [row(10, '["b"]', name="B"), row(11, '["b"]', name="B2"), row(12, '["a"]'), row(13, '["z"]')]
    d = decide_chunk(rows, existing, "insert", 0, None, earlier={'["a"]': 5})
    assert d.runs == [("c", 1), ("f", 3)]
    assert [(f.line, f.message) for f in d.failures] == [
        (13, "duplicate key in file (first at line 12)"),
        (14, "duplicate key in file (first at line 5)"),
        (15, 'duplicate key ["z"]: the record already exists'),
    ]
