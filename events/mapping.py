"""Source columns to dataset fields: by header name, by explicit index, or by position."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from events.datasets import DatasetSchema, SchemaError
from events.types import ImportSpec


class Columns(msgspec.Struct, frozen=True):
    """Which source column feeds which field; `indices[i]` feeds `fields[i]`."""

    fields: tuple[str, ...]
    indices: tuple[int, ...]
    ignored: tuple[str, ...] = ()  # header names that match no field
    width: int | None = None  # the header's width, when there is a header


def resolve_columns(schema: DatasetSchema, spec: ImportSpec, first_row: Sequence[str | None]) -> Columns:
    """Map the source's columns to the schema's fields; SchemaError says what does not fit."""
    names = schema.field_names()
    if spec.mappings:
        by_lower = {n.lower(): n for n in names}
        fields, indices = [], []
        for name, index in spec.mappings.items():
            field = by_lower.get(name.strip().lower())
            if field is None:
                raise SchemaError(f"mapping names unknown field {name!r}; the dataset has: {', '.join(names)}")
            if field in fields:
                raise SchemaError(f"mapping names field {field!r} twice")
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise SchemaError(f"mapping for {name!r} must be a column index >= 0, got {index!r}")
            fields.append(field)
            indices.append(index)
        width = len(first_row) if spec.headers else None
        return Columns(tuple(fields), tuple(indices), (), width)
    if not spec.headers:
        count = min(len(first_row), len(names))
        return Columns(names[:count], tuple(range(count)))
    by_lower = {n.lower(): n for n in names}
    fields, indices, ignored = [], [], []
    for index, raw in enumerate(first_row):
        label = (raw or "").strip()
        if not label:
            continue
        field = by_lower.get(label.lower())
        if field is None:
            ignored.append(label)
            continue
        if field in fields:
            first = indices[fields.index(field)] + 1
            raise SchemaError(f"header names column {label!r} twice (columns {first} and {index + 1})")
        fields.append(field)
        indices.append(index)
    if not fields:
        raise SchemaError(
            "the header row matches no field of the dataset; expected some of: " + ", ".join(names)
        )
    return Columns(tuple(fields), tuple(indices), tuple(ignored), len(first_row))
