"""Dataset records: look up keys, write a chunk's decisions, merge or discard atomic staging."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from events.decisions import Write

_NS = uuidlib.UUID("5b0c6f5e-1f43-4c8e-9a43-2f1f0b8f6a10")
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])
_BATCH = 900  # stay under SQLite's bound-parameter limit


def record_uuid(ticket_uuid: str, index: int) -> str:
    """The id of the record a row creates: stable, so a replayed log names the same records."""
    return str(uuidlib.uuid5(_NS, f"{ticket_uuid}:{index}"))


def fetch_existing(
    conn: sa.Connection, dataset_id: int, keys: Iterable[str], staged_ticket: int | None = None
) -> dict[str, dict[str, Any]]:
    """Current values of the given keys: staged values of an atomic import win over records."""
    keys = list(keys)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _BATCH):
        batch = keys[start : start + _BATCH]
        rows = conn.execute(
            sa.text("SELECT key, data FROM records WHERE dataset_id = :ds AND key IN :keys").bindparams(
                sa.bindparam("keys", expanding=True)
            ),
            {"ds": dataset_id, "keys": batch},
        )
        for key, data in rows:
            found[key] = _decode.decode(data)
        if staged_ticket is not None:
            rows = conn.execute(
                sa.text("SELECT key, data FROM staged WHERE ticket = :t AND key IN :keys").bindparams(
                    sa.bindparam("keys", expanding=True)
                ),
                {"t": staged_ticket, "keys": batch},
            )
            for key, data in rows:
                found[key] = _decode.decode(data)
    return found


_UPSERT_RECORDS = sa.text(
    "INSERT INTO records (dataset_id, key, uuid, data, ticket) VALUES (:ds, :key, :uuid, :data, :t) "
    "ON CONFLICT (dataset_id, key) DO UPDATE SET data = excluded.data, ticket = excluded.ticket"
)
_UPSERT_STAGED = sa.text(
    "INSERT INTO staged (ticket, key, uuid, data) VALUES (:t, :key, :uuid, :data) "
    "ON CONFLICT (ticket, key) DO UPDATE SET data = excluded.data"
)


def write(
    conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, writes: Sequence[Write], *, staged: bool
) -> None:
    """Carry out a chunk's writes, to the records or (atomic) to the ticket's staging."""
    if not writes:
        return
    params = [
        {
            "ds": dataset_id,
            "t": ticket,
            "key": w.key,
            "uuid": record_uuid(ticket_uuid, w.index),
            "data": _json.encode(w.values).decode(),
        }
        for w in writes
    ]
    conn.execute(_UPSERT_STAGED if staged else _UPSERT_RECORDS, params)


def merge_staged(conn: sa.Connection, dataset_id: int, ticket: int) -> int:
    """Move an atomic import's staged rows into the dataset; returns how many."""
    result = conn.execute(
        sa.text(
            "INSERT INTO records (dataset_id, key, uuid, data, ticket) "
            "SELECT :ds, key, uuid, data, ticket FROM staged WHERE ticket = :t "
            "ON CONFLICT (dataset_id, key) DO UPDATE SET data = excluded.data, ticket = excluded.ticket"
        ),
        {"ds": dataset_id, "t": ticket},
    )
    discard_staged(conn, ticket)
    return int(result.rowcount or 0)


def discard_staged(conn: sa.Connection, ticket: int) -> None:
    """Forget an atomic import's staged rows."""
    conn.execute(sa.text("DELETE FROM staged WHERE ticket = :t"), {"t": ticket})


class RecordRow(msgspec.Struct, frozen=True):
    """A stored record as the API shows it."""

    id: str
    key: str
    values: dict[str, Any]


def list_records(conn: sa.Connection, dataset_id: int, *, after: int = 0, limit: int = 100) -> tuple[list[RecordRow], int | None]:
    """A page of a dataset's records in insertion order, and the cursor for the next page."""
    rows = list(
        conn.execute(
            sa.text(
                "SELECT id, uuid, key, data FROM records WHERE dataset_id = :ds AND id > :after ORDER BY id LIMIT :lim"
            ),
            {"ds": dataset_id, "after": after, "lim": limit + 1},
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    page = [RecordRow(r[1], r[2], _decode.decode(r[3])) for r in rows]
    return page, (int(rows[-1][0]) if more and rows else None)


def count_records(conn: sa.Connection, dataset_id: int) -> int:
    """How many records a dataset holds."""
    return int(conn.execute(sa.text("SELECT count(*) FROM records WHERE dataset_id = :ds"), {"ds": dataset_id}).scalar() or 0)


def uuids_for(conn: sa.Connection, dataset_id: int, uuids: Sequence[str]) -> set[str]:
    """Which of these record ids exist in the dataset now."""
    found: set[str] = set()
    for start in range(0, len(uuids), _BATCH):
        batch = list(uuids[start : start + _BATCH])
        found.update(
            conn.execute(
                sa.text("SELECT uuid FROM records WHERE dataset_id = :ds AND uuid IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ds": dataset_id, "ids": batch},
            ).scalars()
        )
    return found
