"""Chunk order: which earlier chunk each chunk waits for when an import's chunks are applied side by side."""

from __future__ import annotations

from typing import Any

from actors.chunk_order import ChunkOrder, KeyTokens, side_by_side
from events.datasets import parse_schema
from events.types import ImportSpec


def _after(parallel: int, chunks: list[set[str]]) -> list[int]:
    order = ChunkOrder(parallel)
    for keys in chunks:
        order.add(keys)
    return order.after


def test_chunks_without_a_common_key_wait_only_for_the_window() -> None:
    assert _after(3, [{"a"}, {"b"}, {"c"}, {"d"}, {"e"}]) == [-1, -1, -1, 0, 1]


def test_a_chunk_waits_for_the_nearest_earlier_chunk_sharing_a_key() -> None:
    assert _after(4, [{"a", "x"}, {"b"}, {"c", "x"}, {"d"}, {"a"}, {"b", "d"}]) == [-1, -1, 0, -1, 0, 3]


def test_one_at_a_time_is_file_order() -> None:
    assert _after(1, [{"a"}, {"b"}, {"c"}]) == [-1, 0, 1]


def test_a_chunk_with_no_readable_key_waits_for_nothing_but_the_window() -> None:
    assert _after(2, [{"a"}, set(), {"a"}]) == [-1, -1, 0]


def test_only_imports_without_an_error_threshold_go_side_by_side() -> None:
    assert side_by_side(ImportSpec(dataset="d"))
    assert not side_by_side(ImportSpec(dataset="d", threshold=0))
    assert not side_by_side(ImportSpec(dataset="d", threshold_percent=5.0))


def test_rows_naming_one_record_give_one_token_and_rows_naming_none_give_none() -> None:
    schema = parse_schema({"fields": [{"name": "email", "type": "email"}, {"name": "n", "type": "integer"},
                                      {"name": "d", "type": "decimal"}], "key": ["email"]})
    tokens = KeyTokens(schema, ("n", "email"))
    rows = [(2, ["1", "Ann@X.io"]), (3, ["2", " ann@x.io "]), (4, ["3", "not an email"]), (5, ["4", None]),
            (6, ["5"]), (7, "line 7: bad quoting")]
    assert tokens(rows) == {"ann@x.io"}
    pair = KeyTokens(parse_schema({**schema_doc(schema), "key": ["n", "d"]}), ("n", "email", "d"))
    assert pair([(2, ["007", "a@b.io", "1.50"]), (3, ["7", "c@d.io", "1.50"]), (4, ["7", "x", None]), (5, ["7"])]) == {(7, "1.50")}
    assert KeyTokens(schema, ("n",))(rows) == set()  # the key column is not in the file


def schema_doc(schema: Any) -> dict[str, Any]:
    return {"fields": [{"name": f.name, "type": f.type} for f in schema.fields], "key": list(schema.key)}
