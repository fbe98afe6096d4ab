"""Streaming JSON arrays: comma-joined values yielded in batches, so memory stays flat."""

from __future__ import annotations

from collections.abc import Iterator

BATCH = 1000  # values per streamed piece


def joined(items: Iterator[bytes]) -> Iterator[bytes]:
    """Comma-joined JSON values, yielded a batch at a time."""
    batch: list[bytes] = []
    first = True
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield (b"" if first else b",") + b",".join(batch)
            first, batch = False, []
    if batch:
        yield (b"" if first else b",") + b",".join(batch)
