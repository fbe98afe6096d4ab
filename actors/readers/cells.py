"""Cell text rules XLSX and XLS share: numbers, dates and times as the text every reader gives."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

# Built-in number formats that show dates or times (27-36 and 50-58 are the CJK ones).
DATE_FORMATS_BUILTIN = frozenset(
    str(i) for i in (*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59))
)
_QUOTED_OR_BRACKETED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|[_*].')
# Serial 61 is 1900-03-01: Excel counts a fictitious 1900-02-29 (serial 60) from 1900-01-01 (1).
EPOCH_1900 = datetime(1899, 12, 30)
EPOCH_1904 = datetime(1904, 1, 1)
MAX_SERIAL = 2958466  # 10000-01-01


def is_date_code(code: str) -> bool:
    """True when a number format shows a date or time: d, m, y, h or s outside quotes and brackets."""
    bare = _QUOTED_OR_BRACKETED.sub("", code).lower()
    return any(ch in bare for ch in "dmyhs")


def number_text(raw: str) -> str:
    """A stored number as text: integers without '.0', other floats repr-shortest."""
    if raw.isascii() and raw.isdigit() and len(raw) < 16 and (raw[0] != "0" or len(raw) == 1):
        return raw  # the common case, already canonical
    try:
        return float_text(float(raw))
    except ValueError:
        return raw


def float_text(value: float) -> str:
    """42.0 -> '42', 3.14 -> '3.14': the shortest digits that read back as the number, never an exponent.

    The text goes into string fields too (an account number typed into a number cell), where
    '1.23456789012e+16' or '0.0' endings would change what the cell showed.
    """
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = repr(value)
    if "e" in text or text.endswith(".0"):  # 1e-07 -> 0.0000001, 1.2e+16 -> 12000000000000000
        return format(Decimal(text).normalize(), "f")
    return text


def float_texts(values: Sequence[float]) -> list[str]:
    """float_text for many numbers at once: repr in C, then '.0' dropped from integral values."""
    if not values or max(map(abs, values)) >= 2**53:
        return list(map(float_text, values))
    joined = "\x00" + "\x00".join(map(repr, values)) + "\x00"
    if "\x00-0.0\x00" in joined or "e" in joined:
        return list(map(float_text, values))
    return joined.replace(".0\x00", "\x00")[1:-1].split("\x00")


def datetime_texts(values: Iterable[datetime]) -> list[str]:
    """datetime_text for many naive moments at once: isoformat in C, midnight cut to the date."""
    joined = "\x00".join(map(datetime.isoformat, values))
    if not joined:
        return []
    return (joined + "\x00").replace("T00:00:00\x00", "\x00")[:-1].split("\x00")


def date_text(raw: str, date1904: bool) -> str:
    """A date-formatted serial as ISO 8601; below 1 it is a time of day."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    if not 0 <= value < MAX_SERIAL:
        return float_text(value)
    # Excel keeps milliseconds; finer digits are float noise.
    days, ms = divmod(round(value * 86_400_000), 86_400_000)
    if not days:
        return _clock(ms)
    if days >= MAX_SERIAL:  # rounded up past 9999-12-31
        return float_text(value)
    day = _day(days, date1904)
    return f"{day}T{_clock(ms)}" if ms else day


@lru_cache(maxsize=1024)
def _day(days: int, date1904: bool) -> str:
    """The ISO date of a day serial (rows of one table tend to share days)."""
    if date1904:
        return (EPOCH_1904 + timedelta(days=days)).date().isoformat()
    base = EPOCH_1900 if days >= 60 else EPOCH_1900 + timedelta(days=1)
    return (base + timedelta(days=days)).date().isoformat()


def _clock(ms: int) -> str:
    """'HH:MM:SS[.ffffff]' of milliseconds into a day."""
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}000"
        if ms
        else f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    )


def datetime_text(value: datetime) -> str:
    """Midnight -> 'YYYY-MM-DD', else 'YYYY-MM-DDTHH:MM:SS[.ffffff]'."""
    if value.time() == time(0):
        return value.date().isoformat()
    return value.isoformat()


def iso_text(raw: str) -> str:
    """An ISO 8601 cell (t="d") in the same form as serial dates."""
    try:
        return datetime_text(datetime.fromisoformat(raw))
    except ValueError:
        try:
            return time.fromisoformat(raw).isoformat()
        except ValueError:
            return raw
