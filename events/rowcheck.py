"""The row check in C: one msgspec.convert per row, a little generated Python, the converters' rules.

Per plan (the present fields in order, their types, whether each is required) this builds an
array-like Struct that msgspec converts a row's text cells to in C (strict=False):

- integer: msgspec's int, within 64 bits. It reads JSON numbers ('42', '-7', '4.2e1'), and a
  fraction or exponent goes through a float ('9007199254740993.0' would lose its last digit), so
  its value is kept for plain digits only; any other cell it takes goes to the converter.
- date: msgspec's date takes exactly YYYY-MM-DD of a real day from year 1, as ours does; the
  cell is the stored text. (For an optional field msgspec also reads 'null' as None, which
  only the converter decides.)
- datetime: msgspec's datetime checks the calendar and the clock; a cell shaped
  YYYY-MM-DDTHH:MM:SS is the stored text, any other shape it takes goes to the converter.
- decimal: msgspec's float checks the JSON number grammar (no '+', no leading zeros, no bare
  point); unsigned plain digits, at most 100 characters, are then canonical as written, and any
  other cell it takes goes to the converter.
- string: at most 65,535 characters in C; blank and non-ASCII text are finished in Python.
- email and boolean: text in C. Python lowercases and matches the address grammar, and looks the
  boolean up (msgspec's bool takes only true/false/1/0: a file of t/f or yes/no would be refused
  on every row).

Empty cells of optional fields become nulls before msgspec sees the row. A row msgspec refuses (a
whitespace-only cell, a short or long row, '+7', ' 1.5'), or a cell whose converter refuses it,
goes to the fallback, the Python row function, which alone words every error: the messages stay
exactly as before, and the first bad field in present order is the one reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from events.coerce import (
    BOOLEANS,
    CONVERTERS,
    INT_MAX,
    INT_MIN,
    MAX_DIGITS,
    MAX_LOCAL_PART,
    MAX_TEXT,
    CellError,
    email_shape,
)

Plan = tuple[tuple[str, str, bool], ...]  # (name, field type, required) per present field
RowFunction = Callable[[Sequence[str | None]], Any]
GIVE_UP_AFTER: Final = 64  # refused rows, in one validator (one chunk), before it uses Python alone

# What msgspec checks per field type; an optional field's type also takes None.
_TYPES: Final[dict[str, Any]] = {
    "string": Annotated[str, msgspec.Meta(max_length=MAX_TEXT)],
    "integer": Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)],
    "decimal": float,
    "boolean": str,
    "date": date,
    "datetime": datetime,
    "email": str,
}

# msgspec takes '' as a non-text value of these types, where the union has a text literal.
_OPTIONAL: Final[dict[str, Any]] = {
    "integer": _TYPES["integer"] | Literal[""] | None,
    "decimal": float | Literal[""] | None,
}

# Generated lines that set x{i}, field i's stored value, from its cell c{i} (never '' or None
# here, but for text) and msgspec's value r.f{i}. Each takes the cell or msgspec's value only where it is
# exactly what the converter returns, and otherwise calls the converter.
_VALUE: Final[dict[str, str]] = {
    "integer": "    x{i} = r.f{i} if c{i}.isdigit() else to_integer(c{i})",
    "decimal": f"    x{{i}} = c{{i}} if len(c{{i}}) <= {MAX_DIGITS} and "
    "c{i}.replace('.', '', 1).isdigit() else to_decimal(c{i})",
    "datetime": "    x{i} = c{i} if len(c{i}) == 19 and c{i}[10] == 'T' else to_datetime(c{i})",
    # msgspec reads the text 'null' (any case) as None for an optional field: the converter
    # words the error.
    "date": "    x{i} = c{i} if r.f{i} is not None else to_date(c{i})",
    "boolean": """\
    x{i} = SPELLED.get(c{i})
    if x{i} is None:
        x{i} = to_boolean(c{i})""",
    "email": f"""\
    x{{i}} = c{{i}}.lower()
    if len(x{{i}}) > {MAX_LOCAL_PART} or email_shape(x{{i}}) is None or not c{{i}}.isascii():
        x{{i}} = to_email(c{{i}})""",
    "string": """\
    if not c{i} or c{i}.isspace():
        {blank}
    elif not c{i}.isascii() and not unicode_ok(c{i}):
        return fallback(cells)
    else:
        x{i} = c{i}""",
}
# The key's JSON text as one f-string, cheaper than encoding a list: stored emails, dates,
# datetimes and decimals hold no character JSON escapes, so quotes suffice; only text needs the
# encoder. The generated code finds json_text and JSON_BOOLEAN in KEY_NAMES.
_KEY_PART: Final = {
    "string": "{{json_text({x})}}",
    "integer": "{{{x}}}",
    "boolean": "{{JSON_BOOLEAN[{x}]}}",
}
# The boolean spellings in the cases files write them; to_boolean takes any other case.
_SPELLED: Final = {
    **BOOLEANS,
    **{word.upper(): value for word, value in BOOLEANS.items()},
    **{word.title(): value for word, value in BOOLEANS.items()},
}
_encode: Final = msgspec.json.Encoder().encode


def _unicode_ok(text: str) -> bool:
    """Whether non-ASCII text can be stored as JSON (it holds no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _json_text(text: str) -> str:
    """A string as JSON text, escapes included."""
    return _encode(text).decode()


KEY_NAMES: Final[dict[str, Any]] = {
    "json_text": _json_text,
    "JSON_BOOLEAN": {True: "true", False: "false"},
}


def key_source(kinds: Mapping[str, str], key: tuple[str, ...], variable: Mapping[str, str]) -> str:
    """The generated f-string of a row's key, from the variables holding its stored values."""
    parts = ",".join(_KEY_PART.get(kinds[k], '"{{{x}}}"').format(x=variable[k]) for k in key)
    return f"f'[{parts}]'"


@functools.lru_cache(maxsize=128)
def row_struct(plan: Plan) -> type[msgspec.Struct]:
    """The array-like Struct msgspec converts a row's cells to, one field f{i} per column."""
    fields = [
        (f"f{i}", _TYPES[kind] if required else _OPTIONAL.get(kind, _TYPES[kind] | None))
        for i, (_, kind, required) in enumerate(plan)
    ]
    return msgspec.defstruct("Row", fields, array_like=True, gc=False, frozen=True)


def checked_rows(
    plan: Plan,
    key: tuple[str, ...],
    python: RowFunction,
    valid_row: type[Any],
    give_up: Callable[[], None],
) -> RowFunction:
    """The msgspec row function of one validator, with `python` as its fallback.

    A refused row costs the failed conversion on top of the Python path, so after GIVE_UP_AFTER
    refused rows (a file with a column msgspec never takes: '+7', padded numbers) it calls
    `give_up()`, for the validator to run the Python path alone from then on.
    """
    refusals = 0

    def refused(cells: Sequence[str | None]) -> Any:
        nonlocal refusals
        refusals += 1
        if refusals == GIVE_UP_AFTER:
            give_up()
        return python(cells)

    return _factory(plan, key)(refused, valid_row)


@functools.lru_cache(maxsize=128)
def _factory(plan: Plan, key: tuple[str, ...]) -> Callable[[RowFunction, type[Any]], RowFunction]:
    """Generate the row function once per plan: msgspec in C, then the checks it cannot make.

    Only generated identifiers and repr() literals reach the source, so no field name can change
    the code. The function is made per validator around its own fallback, and `ValidRow(key,
    values)` (the fallback's result type) builds its results.
    """
    width = len(plan)
    cells = [f"c{i}" for i in range(width)]
    # Empty cells of optional dates become nulls: msgspec takes '' for text and emails as it
    # is, for integers and decimals as Literal[''], but has no such union for dates. A required
    # field refuses '' as it would a null.
    nulls = [
        f"{c} or None" if not required and kind in ("date", "datetime") else c
        for c, (_, kind, required) in zip(cells, plan, strict=True)
    ]
    blanks = " or ".join(f"not {c}" for c, n in zip(cells, nulls, strict=True) if c != n)
    source = [
        "def make(fallback, ValidRow):",
        "    def validate(cells):",
        "        try:",
        f"            {', '.join(cells)}, = cells",  # a short or long row: ValueError
        f"            r = convert([{', '.join(nulls)}] if {blanks} else cells, Row, strict=False)"
        if blanks
        else "            r = convert(cells, Row, strict=False)",
        "        except ValueError:",  # msgspec.ValidationError is one
        "            return fallback(cells)",
        "        try:",
    ]
    for i, (_, kind, required) in enumerate(plan):
        step = _VALUE[kind].format(
            i=i, blank="return fallback(cells)" if required else f"x{i} = None"
        )
        if not required and kind != "string":  # text handles its blanks itself
            step = f"    if not c{i}:\n        x{i} = None\n    else:\n{_indent(step)}"
        source.append(_indent(_indent(_indent(step))))
    source += ["        except CellError:", "            return fallback(cells)"]
    kinds = {name: kind for name, kind, _ in plan}
    variable = {name: f"x{i}" for i, (name, _, _) in enumerate(plan)}
    values = ", ".join(f"{name!r}: x{i}" for i, (name, _, _) in enumerate(plan))
    source += [
        f"        return ValidRow({key_source(kinds, key, variable)}, {{{values}}})",
        "    return validate",
    ]
    namespace: dict[str, Any] = {
        **{f.__name__: f for f in CONVERTERS.values()},
        "convert": msgspec.convert,
        "Row": row_struct(plan),
        "CellError": CellError,
        "unicode_ok": _unicode_ok,
        "email_shape": email_shape,
        "SPELLED": _SPELLED,
        **KEY_NAMES,
    }
    exec(compile("\n".join(source), f"<checked row {width} fields>", "exec"), namespace)
    make: Callable[[RowFunction, type[Any]], RowFunction] = namespace["make"]
    return make


def _indent(block: str) -> str:
    """Indent generated lines one level further."""
    return "\n".join(f"    {line}" for line in block.split("\n"))
