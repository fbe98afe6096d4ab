"""Cell converters: one non-empty text cell to the JSON-able value its field type stores.

Value rules, per cell (a cell is `str | None`, as the file readers give it):

- Empty: None, '' and whitespace-only cells are null (stored as None). A null in a required
  field or a key field is the error "field 'x' is required".
- string: kept exactly as written, surrounding whitespace included; at most 65,535 characters;
  text holding a lone surrogate is refused (it could not be stored as JSON).
- integer: an optional sign and ASCII digits, surrounding whitespace allowed; an exactly
  integral decimal ('42.0', '4.2e1', as spreadsheets write numbers) counts. '4.5', '1_000',
  'true' are refused. Signed 64-bit range, else "out of range". Stored as an int, so '007'
  and '7' are the same value.
- decimal: any finite decimal notation (no NaN or Infinity, no '_'), surrounding whitespace
  allowed. Stored as canonical plain text: no exponent, no '+', no leading zeros, no '-0';
  the scale written is kept ('12.50' stays '12.50', '1.5e-3' is '0.0015', '1E+3' is '1000').
  At most 100 digits before and 100 after the point.
- boolean: true/false, t/f, yes/no, y/n, 1/0 in any case -> True/False.
- date: 'YYYY-MM-DD'; a datetime at exactly midnight without an offset (a spreadsheet date,
  '2024-01-05T00:00:00') is that date; any other time or an offset is refused. Stored as
  'YYYY-MM-DD'.
- datetime: 'YYYY-MM-DD[T| ]HH:MM[:SS[.ffffff]][Z|±HH:MM]', or a bare date meaning midnight.
  Stored as 'YYYY-MM-DDTHH:MM:SS' plus '.ffffff' when the microseconds are not zero; naive
  stays naive, aware is converted to UTC and ends in 'Z'.
- email: stripped and lowercased, then ASCII local@domain.tld (one '@', no spaces, a local
  part of at most 64 and an address of at most 254 characters). Stored lowercased.

Each converter takes a cell that is not empty (the row validator handles None, '' and
whitespace-only cells) and returns the stored value, or raises CellError whose text completes
the sentence "field 'x': ...". Each tries a cheap fast path for the shape files usually carry,
then a general parse that alone decides what is an error and what it says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

MAX_TEXT: Final = 65_535
MAX_EMAIL: Final = 254
MAX_LOCAL_PART: Final = 64
MAX_DIGITS: Final = 100  # a decimal stays below 10**100 and has at most 100 places
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
_SHOWN: Final = 40  # characters of a cell quoted in a message

Converter = Callable[[str], Any]


class CellError(ValueError):
    """A cell that does not fit its field's type; str(exc) completes "field 'x': ..."."""


def show(cell: str) -> str:
    """The cell quoted for a message, cut short so a huge cell cannot bloat the error."""
    if len(cell) <= _SHOWN:
        return repr(cell)
    return f"{cell[:_SHOWN]!r}... ({len(cell)} characters)"


def to_text(cell: str) -> str:
    """A string field: the cell as it is, whitespace included."""
    if len(cell) > MAX_TEXT:
        raise CellError(f"text is {len(cell)} characters long; the limit is {MAX_TEXT}")
    if not cell.isascii():
        try:
            cell.encode()
        except UnicodeEncodeError:
            # A lone surrogate could not be written as JSON later, failing a whole chunk.
            raise CellError("text is not valid Unicode (it holds a lone surrogate)") from None
    return cell


def _number(cell: str) -> Decimal | None:
    """A finite decimal written in ASCII digits, or None; Decimal alone would take '1_0' and '٣'."""
    text = cell.strip()
    if not text.isascii() or "_" in text:
        return None
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def to_integer(cell: str) -> int:
    """An integer field: a signed 64-bit int; an exactly integral decimal such as '42.0' counts."""
    if len(cell) < 19 and cell.isdigit() and cell.isascii():
        return int(cell)  # the common case: plain digits, so certainly within range
    try:
        value = int(cell)
    except ValueError:
        value = _integral(cell)
    else:
        # int() also takes '1_000' and other scripts' digits; whitespace may be any.
        if "_" in cell or not cell.strip().isascii():
            raise CellError(f"expected an integer, got {show(cell)}")
    if INT_MIN <= value <= INT_MAX:
        return value
    raise CellError(f"{show(cell)} is out of range for a 64-bit integer")


def _integral(cell: str) -> int:
    """The slow path for spreadsheet numbers ('42.0', '4.2e1') and anything int() refused."""
    number = _number(cell)
    if number is None or number != number.to_integral_value():
        raise CellError(f"expected an integer, got {show(cell)}")
    if number.is_zero():
        return 0  # '0e999' is zero, not out of range
    if number.adjusted() >= 19:
        # Checked before int(): '1e999999999' would otherwise build a gigantic int.
        raise CellError(f"{show(cell)} is out of range for a 64-bit integer")
    return int(number)


def to_decimal(cell: str) -> str:
    """A decimal field: canonical plain notation, keeping the scale written ('12.50')."""
    if (
        cell.replace(".", "", 1).isdigit()
        and cell.isascii()
        and len(cell) <= MAX_DIGITS
        and cell[-1] != "."
        and ((cell[0] != "0" and cell[0] != ".") or len(cell) == 1 or cell[1] == ".")
    ):
        return cell  # already canonical: unsigned digits, no leading zeros, no bare point
    return _canonical_decimal(cell)


def _canonical_decimal(cell: str) -> str:
    """The slow path: parse any finite decimal notation and write it out plainly."""
    number = _number(cell)
    if number is None:
        raise CellError(f"expected a decimal number, got {show(cell)}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, so never 'n' or 'F'
    if exponent < -MAX_DIGITS or (not number.is_zero() and number.adjusted() >= MAX_DIGITS):
        raise CellError(
            f"{show(cell)} is out of range for a decimal "
            f"(at most {MAX_DIGITS} digits before and after the point)"
        )
    if number.is_zero():
        # One zero: '-0.00' is '0.00', and '0e5' is '0'.
        number = number.copy_abs() if exponent <= 0 else Decimal(0)
    return format(number, "f")


BOOLEANS: Final = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


def to_boolean(cell: str) -> bool:
    """A boolean field: true/false, t/f, yes/no, y/n, 1/0 in any case."""
    value = BOOLEANS.get(cell)
    if value is None:
        value = BOOLEANS.get(cell.strip().lower())
        if value is None:
            raise CellError(f"expected a boolean (true/false, yes/no, 1/0), got {show(cell)}")
    return value


# The accepted date-and-time grammar; datetime.fromisoformat alone (3.11) would also take
# week dates, basic formats and hour-only times.
_DATETIME: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(?P<zone>Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
_DATE_SHAPE: Final = "a date (YYYY-MM-DD)"
_DATETIME_SHAPE: Final = "a date and time (YYYY-MM-DDTHH:MM[:SS], optionally ending in Z or ±HH:MM)"


def _invalid(cell: str, what: str, exc: ValueError) -> CellError:
    """Explain why a well-shaped value is still impossible ('month must be in 1..12')."""
    return CellError(f"{show(cell)} is not {what}: {exc}")


def to_date(cell: str) -> str:
    """A date field: 'YYYY-MM-DD'; a midnight datetime from a spreadsheet is that date."""
    try:
        date.fromisoformat(cell)
    except ValueError:
        pass
    else:
        # Of the shapes fromisoformat takes (ASCII digits only), 10 characters with '-' at
        # index 7 is exactly YYYY-MM-DD: it rules out YYYY-Www-D and YYYYMMDD.
        if len(cell) == 10 and cell[7] == "-":
            return cell
    text = cell.strip()
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise CellError(f"expected {_DATE_SHAPE}, got {show(cell)}")
    day = match["date"]
    try:
        date.fromisoformat(day)
    except ValueError as exc:
        raise _invalid(cell, "a valid date", exc) from None
    time, zone = match["time"], match["zone"]
    if zone is not None or (time is not None and time.strip("0:.") != ""):
        raise CellError(f"expected {_DATE_SHAPE} without a time of day, got {show(cell)}")
    return day


def to_datetime(cell: str) -> str:
    """A datetime field: ISO text; naive stays naive, aware becomes UTC ending in 'Z'."""
    try:
        datetime.fromisoformat(cell)
    except ValueError:
        pass
    else:
        # Of the 19-character shapes fromisoformat takes, '-', 'T' or ' ', ':' and ':' at
        # indices 7, 10, 13 and 16 leave only YYYY-MM-DD?HH:MM:SS: no offset, no fraction.
        if len(cell) == 19:
            shape = cell[7:17:3]
            if shape == "-T::":
                return cell
            if shape == "- ::":
                return f"{cell[:10]}T{cell[11:]}"
    return _any_datetime(cell)


def _any_datetime(cell: str) -> str:
    """The slow path: every accepted form, its precise errors, and conversion to UTC."""
    text = cell.strip()
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise CellError(f"expected {_DATETIME_SHAPE}, got {show(cell)}")
    zone = match["zone"]
    if zone is not None and zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:]) > 59):
        # fromisoformat would read '+05:75' as +06:15 and word the rest in timedelta terms.
        raise CellError(
            f"{show(cell)} is not a valid date and time: the UTC offset must be within ±23:59"
        )
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _invalid(cell, "a valid date and time", exc) from None
    if value.tzinfo is None:
        return value.isoformat()
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise CellError(f"{show(cell)} is out of range once converted to UTC") from None
    return value.replace(tzinfo=None).isoformat() + "Z"


# HTML5's address grammar (ASCII only) with a dotted domain ending in a letter-led TLD of two or
# more characters, and no empty dot-atoms in the local part: what mail providers accept. The
# possessive quantifiers never backtrack, which halves the cost; lengths are checked apart.
_ATEXT: Final = "[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_EMAIL: Final = re.compile(
    rf"{_ATEXT}++(?:\.{_ATEXT}++)*+"  # local part: dot-separated atoms
    r"@(?:[a-z0-9]++(?:-++[a-z0-9]++)*+\.)++"  # domain labels: hyphens inside only
    r"[a-z](?:-*+[a-z0-9]++)++",  # top-level domain
)
email_shape: Final = _EMAIL.fullmatch
"""Match a lowercased address against the grammar (lengths and ASCII are checked apart)."""


def to_email(cell: str) -> str:
    """An email field: stripped and lowercased local@domain.tld, at most 254 characters."""
    text = cell.lower()
    # isascii on the cell: lower() maps the Kelvin sign to 'k', which must not pass. Up to 64
    # characters no part can exceed its limit.
    if len(text) <= MAX_LOCAL_PART and _EMAIL.fullmatch(text) is not None and cell.isascii():
        return text
    return _long_email(cell)


def _long_email(cell: str) -> str:
    """The slow path: surrounding whitespace, long addresses, and the precise error."""
    text = cell.strip().lower()
    if len(text) > MAX_EMAIL:
        raise CellError(
            f"{show(cell)} is not a valid email address (longer than {MAX_EMAIL} characters)"
        )
    if cell.isascii() and _EMAIL.fullmatch(text) is not None:
        local, _, domain = text.partition("@")
        if len(local) > MAX_LOCAL_PART:
            raise CellError(
                f"{show(cell)} is not a valid email address "
                f"(the part before @ is longer than {MAX_LOCAL_PART})"
            )
        if max(map(len, domain.split("."))) > 63:
            raise CellError(
                f"{show(cell)} is not a valid email address (a domain label is longer than 63)"
            )
        return text
    raise CellError(f"{show(cell)} is not a valid email address")


CONVERTERS: Final[dict[str, Converter]] = {
    "string": to_text,
    "integer": to_integer,
    "decimal": to_decimal,
    "boolean": to_boolean,
    "date": to_date,
    "datetime": to_datetime,
    "email": to_email,
}
