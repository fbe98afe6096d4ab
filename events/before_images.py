"""Before-images: what the records an import wrote held before it, kept as it writes, put back by a revert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa

_BATCH = 900  # stay under SQLite's bound-parameter limit
_json = msgspec.json.Encoder()


def keep(conn: sa.Connection, dataset_id: int, ticket: int, keys: Sequence[str]) -> None:
    """Before a chunk writes these keys: remember each one's current record (or its absence).

    The first image of a key wins: a key the import writes twice keeps what was there before the import.
    """
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:  # one round trip, the keys as a binary array (see records.fetch_existing)
            cursor.execute(
                "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
                "SELECT %s, t.k, r.uuid, r.data, r.ticket FROM (SELECT DISTINCT k FROM unnest(%b::text[]) AS u(k)) AS t "
                "LEFT JOIN records r ON r.dataset_id = %s AND r.key = t.k "
                "ON CONFLICT (ticket, key) DO NOTHING",
                (ticket, list(keys), dataset_id),
            )
        finally:
            cursor.close()
        return
    conn.execute(
        sa.text(
            "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
            "SELECT :t, j.value, r.uuid, r.data, r.ticket FROM (SELECT DISTINCT value FROM json_each(:keys)) AS j "
            "LEFT JOIN records r ON r.dataset_id = :ds AND r.key = j.value WHERE true "
            "ON CONFLICT (ticket, key) DO NOTHING"
        ),
        {"t": ticket, "keys": _json.encode(list(keys)).decode(), "ds": dataset_id},
    )


def keep_staged(conn: sa.Connection, dataset_id: int, ticket: int) -> None:
    """Before an atomic import's staging is merged: remember the current record of every staged key."""
    conn.execute(
        sa.text(
            "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
            "SELECT s.ticket, s.key, r.uuid, r.data, r.ticket FROM staged s "
            "LEFT JOIN records r ON r.dataset_id = :ds AND r.key = s.key WHERE s.ticket = :t "
            "ON CONFLICT (ticket, key) DO NOTHING"
        ),
        {"ds": dataset_id, "t": ticket},
    )


def count(conn: sa.Connection, ticket: int) -> int:
    """How many before-images the import has."""
    return int(conn.execute(sa.text("SELECT count(*) FROM before_images WHERE ticket = :t"), {"t": ticket}).scalar() or 0)


def forget(conn: sa.Connection, ticket: int) -> None:
    """Drop an import's before-images (its revert is done)."""
    conn.execute(sa.text("DELETE FROM before_images WHERE ticket = :t"), {"t": ticket})


_RESTORE = (
    "INSERT INTO records (dataset_id, key, uuid, data, ticket) VALUES (:ds, :key, :uuid, :data, :ticket) "
    "ON CONFLICT (dataset_id, key) DO UPDATE SET uuid = excluded.uuid, data = excluded.data, ticket = excluded.ticket"
)


def _put_back_pg(conn: sa.Connection, dataset_id: int, deletes: list[str], restores: list[dict[str, Any]]) -> None:
    """PostgreSQL: a page's deletes and restores in one statement each, over binary arrays (as records.write)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if deletes:
            cursor.execute("DELETE FROM records WHERE dataset_id = %s AND key = ANY(%b)", (dataset_id, deletes))
        if restores:
            cursor.execute(
                "INSERT INTO records (dataset_id, key, uuid, data, ticket) "
                "SELECT %s, k, u, d, t FROM unnest(%b::text[], %b::text[], %b::text[], %b::int8[]) AS x(k, u, d, t) "
                "ON CONFLICT (dataset_id, key) DO UPDATE SET uuid = excluded.uuid, data = excluded.data, ticket = excluded.ticket",
                (
                    dataset_id, [r["key"] for r in restores], [r["uuid"] for r in restores],
                    [r["data"] for r in restores], [r["ticket"] for r in restores],
                ),
            )
    finally:
        cursor.close()


class RevertPage(NamedTuple):
    """What reverting one page of before-images did, and where the next page starts."""

    deleted: int
    restored: int
    conflicts: int
    last_key: str | None  # the page's last key: the next page starts after it
    more: bool  # whether before-images remain after this page


def revert_page(
    conn: sa.Connection, dataset_id: int, ticket: int, after: str | None, limit: int, *, force: bool
) -> RevertPage:
    """Put back up to `limit` records (in key order after `after`) as they were before the import.

    A record whose last writer is no longer this import was changed later: a conflict, left as it
    is unless `force`. A record the import created is deleted; one it changed gets its old values.
    """
    query = (
        "SELECT b.key, b.uuid, b.data, b.prev_ticket, r.key, r.ticket FROM before_images b "
        "LEFT JOIN records r ON r.dataset_id = :ds AND r.key = b.key WHERE b.ticket = :t"
        + ("" if after is None else " AND b.key > :after")
        + " ORDER BY b.key LIMIT :lim"
    )
    params: dict[str, Any] = {"ds": dataset_id, "t": ticket, "lim": limit + 1}
    if after is not None:
        params["after"] = after
    rows = list(conn.execute(sa.text(query), params))
    more = len(rows) > limit
    rows = rows[:limit]
    deletes: list[str] = []
    restores: list[dict[str, Any]] = []
    conflicts = 0
    for key, uuid, data, prev_ticket, present, current in rows:
        if not force and (present is None or current != ticket):
            conflicts += 1
        elif data is None:
            deletes.append(key)
        else:
            restores.append({"ds": dataset_id, "key": key, "uuid": uuid, "data": data, "ticket": prev_ticket})
    if conn.dialect.name == "postgresql":
        _put_back_pg(conn, dataset_id, deletes, restores)
        return RevertPage(len(deletes), len(restores), conflicts, rows[-1][0] if rows else after, more)
    for start in range(0, len(deletes), _BATCH):
        conn.execute(
            sa.text("DELETE FROM records WHERE dataset_id = :ds AND key IN :keys").bindparams(
                sa.bindparam("keys", expanding=True)
            ),
            {"ds": dataset_id, "keys": deletes[start : start + _BATCH]},
        )
    if restores:
        conn.execute(sa.text(_RESTORE), restores)
    return RevertPage(len(deletes), len(restores), conflicts, rows[-1][0] if rows else after, more)
