"""Dataset schemas (typed fields and a key) and the fast per-row validator the engine runs.

The value rules each field type applies are listed in events.coerce.

A ValidRow holds the present fields only (nulls included) and the key: the JSON text of the
key fields' stored values, in key order ('["ann@example.com"]', '[42,"x"]'), so values that
store the same ('ANN@x.com' and 'ann@x.com') name the same record. A decimal key keeps its
scale: '1.5' and '1.50' are different keys.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, get_args

import msgspec

from events.coerce import BOOLEANS, CONVERTERS, MAX_TEXT, CellError
from events.rowcheck import KEY_NAMES, checked_rows, key_source

FieldType = Literal["string", "integer", "decimal", "boolean", "date", "datetime", "email"]

FIELD_TYPES: Final[tuple[str, ...]] = get_args(FieldType)
MAX_FIELDS: Final = 200
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMA_KEYS: Final = ("fields", "key")
_FIELD_KEYS: Final = ("name", "type", "required")
_encode: Final = msgspec.json.Encoder().encode


class Field(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One typed field of a dataset."""

    name: str
    type: FieldType = "string"
    required: bool = False


class DatasetSchema(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A dataset's fields and the fields whose values identify a record."""

    fields: tuple[Field, ...]
    key: tuple[str, ...]

    def field_names(self) -> tuple[str, ...]:
        """The field names, in schema order."""
        return tuple(f.name for f in self.fields)


class SchemaError(ValueError):
    """An invalid schema or mapping; str(exc) is a complete sentence a caller can act on."""


class ValidRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A row that passed validation: its canonical key and its present fields' values."""

    key: str
    values: dict[str, Any]


RowFunction = Callable[[Sequence[str | None]], ValidRow | str]
Engine = Literal["python", "msgspec"]
# The default row check. Measured by `python -m bench.validate` (docs/performance.md), msgspec's
# is 1.06x the Python one on the bench's rows but 0.91x on rows with empty optional cells, so
# Python stays the default.
ENGINE: Final[Engine] = "python"


def parse_schema(raw: bytes | str | Mapping[str, Any]) -> DatasetSchema:
    """Decode and check a schema document; every problem is a SchemaError saying what to fix.

    Key fields come back required: a record cannot be identified by a null.
    """
    if isinstance(raw, bytes | str):
        try:
            doc: Any = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise SchemaError(f"the schema is not valid JSON: {exc}") from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise SchemaError(
            f'the schema must be a JSON object like {{"fields": [...], "key": [...]}}, '
            f"got {_kind(doc)}"
        )
    _no_unknown(doc, _SCHEMA_KEYS, "the schema")
    fields = _fields(doc.get("fields"))
    key = _key(doc.get("key"), fields)
    # Key fields are required whatever the document says, and the stored schema says so.
    return DatasetSchema(
        fields=tuple(
            msgspec.structs.replace(f, required=True) if f.name in key and not f.required else f
            for f in fields
        ),
        key=key,
    )


def _kind(value: object) -> str:
    """A JSON word for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list | tuple) else type(value).__name__


def _no_unknown(doc: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse properties the schema does not define, so a typo is not silently ignored."""
    for prop in doc:
        if prop not in allowed:
            raise SchemaError(
                f"{where} has an unknown property {prop!r}; allowed: {', '.join(allowed)}"
            )


def _fields(raw: Any) -> list[Field]:
    """Check the "fields" list and build its Fields."""
    if raw is None:
        raise SchemaError('the schema has no "fields"; give a list like [{"name": "email"}]')
    if not isinstance(raw, list | tuple):
        raise SchemaError(f'the schema\'s "fields" must be a list of objects, got {_kind(raw)}')
    if not raw:
        raise SchemaError("the schema has no fields; define at least one")
    if len(raw) > MAX_FIELDS:
        raise SchemaError(f"the schema has {len(raw)} fields; the limit is {MAX_FIELDS}")
    fields: list[Field] = []
    seen: dict[str, str] = {}  # lowercased name -> name as first written
    for number, item in enumerate(raw, 1):
        field = _field(item, number)
        lowered = field.name.lower()
        if lowered in seen:
            first = seen[lowered]
            if first == field.name:
                raise SchemaError(f"field name {first!r} is used twice")
            raise SchemaError(
                f"field names {first!r} and {field.name!r} differ only in case; rename one"
            )
        seen[lowered] = field.name
        fields.append(field)
    return fields


def _field(item: Any, number: int) -> Field:
    """Check one field object; `number` counts from 1 for messages."""
    if not isinstance(item, Mapping):
        raise SchemaError(
            f'field #{number} must be an object like {{"name": "email"}}, got {_kind(item)}'
        )
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f'field #{number} needs a "name": a non-empty string')
    where = f"field #{number} ({name!r})"
    _no_unknown(item, _FIELD_KEYS, where)
    if _NAME.fullmatch(name) is None:
        raise SchemaError(
            f"field name {name!r} is not allowed; use 1 to 63 ASCII letters, digits or "
            "underscores, not starting with a digit"
        )
    kind = item.get("type", "string")
    if kind not in FIELD_TYPES:
        raise SchemaError(
            f"field {name!r} has unknown type {kind!r}; allowed types: {', '.join(FIELD_TYPES)}"
        )
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise SchemaError(
            f'field {name!r}: "required" must be true or false, not {_kind(required)}'
        )
    return Field(name=name, type=kind, required=required)


def _key(raw: Any, fields: Sequence[Field]) -> tuple[str, ...]:
    """Check the "key" list against the fields."""
    if raw is None:
        raise SchemaError(
            'the schema has no "key"; name the fields that identify a record: ["email"]'
        )
    if not isinstance(raw, list | tuple):
        raise SchemaError(f'the schema\'s "key" must be a list of field names, got {_kind(raw)}')
    if strays := [k for k in raw if not isinstance(k, str)]:
        raise SchemaError(
            f"the schema's key must list field names, got {_kind(strays[0])} {strays[0]!r}"
        )
    if not raw:
        raise SchemaError("the schema's key is empty; name the fields that identify a record")
    names = [f.name for f in fields]
    for position, name in enumerate(raw):
        if name not in names:
            near = [n for n in names if n.lower() == name.lower()]
            hint = f"did you mean {near[0]!r}?" if near else f"the fields are: {', '.join(names)}"
            raise SchemaError(f"the key names unknown field {name!r}; {hint}")
        if name in raw[:position]:
            raise SchemaError(f"the key names field {name!r} twice")
    return tuple(raw)


def schema_json(schema: DatasetSchema) -> bytes:
    """The schema as canonical JSON: fields in order, every property written out."""
    return _encode(schema)


class RowValidator:
    """Compiled once per import for (schema, present fields); validates rows fast."""

    __slots__ = ("validate",)

    # The generated function itself, not a method calling it: one Python call less per row.
    validate: RowFunction
    """Validate one row (cells in `present` order): a ValidRow, or a message naming the field.

    Short rows are padded with nulls; a longer row is the message "row has 7 values, expected 5".
    """

    def __init__(
        self, schema: DatasetSchema, present: Sequence[str], *, engine: Engine = ENGINE
    ) -> None:
        """Check `present` against the schema; a SchemaError names what the source lacks.

        `engine` picks the row check: "python" (the generated Python function) or "msgspec"
        (events.rowcheck: msgspec in C, the Python function for the rows it refuses). Both give
        the same result for every row.
        """
        by_name = {f.name: f for f in schema.fields}
        seen: set[str] = set()
        for name in present:
            if name not in by_name:
                raise SchemaError(f"unknown field {name!r}; the dataset has: {', '.join(by_name)}")
            if name in seen:
                raise SchemaError(f"field {name!r} is supplied twice")
            seen.add(name)
        key = set(schema.key)
        # A schema built by hand rather than parse_schema may still be inconsistent.
        if not key <= by_name.keys() or not {f.type for f in schema.fields} <= CONVERTERS.keys():
            raise SchemaError("the dataset's schema is inconsistent; redefine it")
        needed = [f.name for f in schema.fields if f.required or f.name in key]
        if missing := [name for name in needed if name not in seen]:
            raise SchemaError(f"missing required columns: {', '.join(missing)}")
        plan = tuple((name, by_name[name].type, name in needed) for name in present)
        python = _compile(plan, schema.key)
        self.validate = python
        if engine == "msgspec":

            def give_up() -> None:
                self.validate = python

            self.validate = checked_rows(plan, schema.key, python, ValidRow, give_up)


class KeyReader:
    """Reads the key of a row that failed validation, when its key cells are valid on their own."""

    __slots__ = ("_positions", "_validate")

    def __init__(self, schema: DatasetSchema, present: Sequence[str]) -> None:
        """Key fields by their position among `present` (a source without them yields no keys)."""
        where = {name: i for i, name in enumerate(present)}
        kinds = {f.name: f.type for f in schema.fields}
        known = all(k in where and k in kinds for k in schema.key)
        self._positions = tuple(where[k] for k in schema.key) if known else None
        plan = tuple((k, kinds[k], True) for k in schema.key) if known else ()
        self._validate = _compile(plan, schema.key) if known else None

    def __call__(self, cells: Sequence[str | None]) -> str | None:
        """The row's canonical key (as ValidRow.key), or None when a key cell is missing or invalid."""
        if self._positions is None or self._validate is None:
            return None
        width = len(cells)
        result = self._validate([cells[i] if i < width else None for i in self._positions])
        return None if isinstance(result, str) else result.key


def _fit(cells: Sequence[str | None], width: int) -> list[str | None] | str:
    """Pad a short row with nulls; a long one is an error, as a stray delimiter would make it."""
    if len(cells) > width:
        return f"row has {len(cells)} values, expected {width}"
    return [*cells, *[None] * (width - len(cells))]


# Inline fast paths of the generated row function: (condition, value) per type, each agreeing
# with its converter's own fast path; a cell failing the condition goes to the converter.
_FAST: Final = {
    "string": (
        f"{{c}} and {{c}}.isascii() and len({{c}}) <= {MAX_TEXT} and not {{c}}.isspace()",
        "{c}",
    ),
    "integer": ("{c} and {c}.isdigit() and {c}.isascii() and len({c}) < 19", "int({c})"),
    "boolean": ("{c} in BOOLEANS", "BOOLEANS[{c}]"),
}
_FIELD: Final = """\
    {branch} {c} and not {c}.isspace():
        try:
            values[{name}] = {convert}({c})
        except CellError as exc:
            return {fail} + str(exc)
"""


@functools.lru_cache(maxsize=128)
def _compile(plan: tuple[tuple[str, FieldType, bool], ...], key: tuple[str, ...]) -> RowFunction:
    """Generate the row function for one plan: unrolled, so a cell costs no loop or dispatch.

    Only generated identifiers and repr() literals reach the source, so no field name, however
    odd, can change the code. It is cached because the engine builds a validator per chunk.
    """
    width = len(plan)
    cells = ", ".join(f"c{i}" for i in range(width))
    source = [
        "def validate(cells):",
        "    try:",
        f"        [{cells}] = cells",
        "    except ValueError:",
        f"        cells = fit(cells, {width})",
        "        if isinstance(cells, str):",
        "            return cells",
        f"        [{cells}] = cells",
        "    values = template.copy()",  # a presized dict whose nulls are already in place
    ]
    for i, (name, kind, required) in enumerate(plan):
        c, literal = f"c{i}", repr(name)
        branch = "if"
        if kind in _FAST:
            condition, value = _FAST[kind]
            source.append(f"    if {condition.format(c=c)}:")
            source.append(f"        values[{literal}] = {value.format(c=c)}")
            branch = "elif"
        convert = CONVERTERS[kind].__name__
        source.append(
            _FIELD.rstrip("\n").format(
                branch=branch, c=c, name=literal, convert=convert, fail=repr(f"field {name!r}: ")
            )
        )
        if required:
            source.append("    else:")
            source.append(f"        return {f'field {name!r} is required'!r}")
    kinds = {name: kind for name, kind, _ in plan}
    for j, k in enumerate(key):
        source.append(f"    k{j} = values[{k!r}]")
    variable = {k: f"k{j}" for j, k in enumerate(key)}
    source.append(f"    return ValidRow({key_source(kinds, key, variable)}, values)")
    namespace: dict[str, Any] = {
        **{f.__name__: f for f in CONVERTERS.values()},
        "BOOLEANS": BOOLEANS,
        "CellError": CellError,
        "ValidRow": ValidRow,
        **KEY_NAMES,
        "fit": _fit,
        "template": dict.fromkeys(name for name, _, _ in plan),
    }
    exec(compile("\n".join(source), f"<row validator {width} fields>", "exec"), namespace)
    function: RowFunction = namespace["validate"]
    return function
