"""Loose caller inputs (form fields, query strings, JSON) to the engine's ImportSpec parts."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from actors.readers import ReaderError, text_codec
from app.errors import BadRequest

SEPARATORS = {",": ",", "\t": "\t", "\\t": "\t", "tab": "\t", "|": "|", ";": ";"}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_threshold(value: Any, *, zero_means_none: bool = False) -> tuple[int | None, float | None]:
    """An error threshold: an integer count, or a quoted "N%" (0 < N < 100). Returns (count, percent)."""
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        raise BadRequest("errorThreshold must be an integer or a percentage like \"5%\"", field="errorThreshold")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str):
        m = _PERCENT.match(value)
        if m:
            pct = float(m.group(1))
            if not 0 < pct < 100:
                raise BadRequest(f"a percentage threshold must be between 0% and 100% exclusive, got {value!r}", field="errorThreshold")
            return None, pct
        if not value.strip().lstrip("-").isdigit():
            raise BadRequest(f"threshold must be an integer or a percentage like \"5%\", got {value!r}", field="errorThreshold")
        count = int(value.strip())
    else:
        raise BadRequest(f"threshold must be an integer or a percentage like \"5%\", got {value!r}", field="errorThreshold")
    if count < 0:
        raise BadRequest(f"threshold must not be negative, got {count}", field="errorThreshold")
    if count == 0 and zero_means_none:
        return None, None
    return count, None


def parse_encoding(value: Any) -> str | None:
    """A CSV text encoding by any name Python knows (latin-1, cp1252, utf-16…); None = UTF-8 or the BOM's."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"encoding must be a name such as utf-8 or cp1252, got {value!r}", field="encoding")
    try:
        text_codec(value)
    except ReaderError as exc:
        raise BadRequest(str(exc), field="encoding") from None
    return value


def parse_separator(value: str | None) -> str | None:
    """A CSV separator: , tab | or ; (None = sniff)."""
    if value is None or value == "":
        return None
    sep = SEPARATORS.get(value) or SEPARATORS.get(value.lower())
    if sep is None:
        raise BadRequest(f"separator must be one of ',', '\\t', '|', ';', got {value!r}", field="separator")
    return sep


def parse_bool(value: str | bool | None, name: str, default: bool) -> bool:
    """A boolean form or query field."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"{name} must be true or false, got {value!r}", field=name)


def parse_mappings(value: Any) -> dict[str, int] | None:
    """Field-to-column mappings: {"email": 0, ...}, [{"email": 0}, ...], or that as JSON text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise BadRequest("mappings must be JSON: {\"field\": column_index, ...}", field="mappings") from None
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, dict) or len(item) != 1:
                raise BadRequest("each mapping must be an object with one field: {\"email\": 0}", field="mappings")
            pairs.extend(item.items())
    else:
        raise BadRequest("mappings must be an object or a list of one-key objects", field="mappings")
    out: dict[str, int] = {}
    for name, index in pairs:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise BadRequest(f"mapping {name!r} must give a column index >= 0, got {index!r}", field="mappings")
        if name in out:
            raise BadRequest(f"mapping names field {name!r} twice", field="mappings")
        out[str(name)] = index
    return out or None
