"""What the dialects share: their OpenAPI error entries and epoch-millisecond times."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.openapi import ResponseSpec


def error_specs(model: type, *codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for an endpoint's error statuses, each answered with the dialect's error body."""
    return {c: ResponseSpec(model, description="Error", generate_examples=False) for c in codes}


def epoch_ms(at: datetime | None) -> int:
    """Unix epoch milliseconds (0 when there is no time yet)."""
    if at is None:
        return 0
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)
