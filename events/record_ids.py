"""Record ids: the record a row creates is named after its ticket and its row, so it is found again without a look-up."""

from __future__ import annotations

PREFIX = 24  # the characters of the ticket's uuid every record it creates starts with


def record_uuid(ticket_uuid: str, index: int) -> str:
    """The id of the record a row creates: the ticket's uuid with the row index as its last 48 bits.

    Stable (a replayed log names the same records), a valid UUID string, unique per (ticket, row),
    and cheap: it is computed for every created row on the hot path.
    """
    return f"{ticket_uuid[:PREFIX]}{index:012x}"


def created_by(ticket_uuid: str) -> str:
    """What the id of every record this ticket created starts with."""
    return ticket_uuid[:PREFIX]


def creating_row(uuid: str) -> int:
    """The index of the row that created the record with this id (for an id made by record_uuid)."""
    return int(uuid[PREFIX:], 16)
