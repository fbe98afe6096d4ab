"""Freed memory back to the OS after a hostile file: glibc keeps it in the reading thread's malloc arena.

A reader that refuses a huge workbook row has held tens of MB of text; freed, glibc keeps those pages
for the thread that used them, and each request or step thread has an arena of its own, so a caller
repeating such files grew a process by ~60 MB a time (measured: 103 MB to 382 MB over six). After a
refusal the pages go back (malloc_trim), which costs a few ms and only on that path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Any


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to give back this way
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Free what the young generations hold in cycles (a reader's traceback keeps its generators'
    frames, and their text, in cycles), then return every malloc arena's free pages to the OS."""
    gc.collect(1)
    if _TRIM is not None:
        _TRIM(0)
