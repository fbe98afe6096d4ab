"""Before-images: what the records an import wrote held before it, kept as it writes, put back by a revert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa

from events.record_ids import PREFIX, created_by
from events.types import RevertPhase

_BATCH = 900  # stay under SQLite's bound-parameter limit
_json = msgspec.json.Encoder()


def keep(conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, keys: Sequence[str]) -> None:
    """Before a chunk updates these keys: remember each one's current record.

    Only records that were there before the import get an image: the ones it created carry its id
    (record_ids.record_uuid), so a revert finds and deletes them without one. The first image of a
    key wins: a key the import writes twice keeps what was there before the import.
    """
    if not keys:
        return
    prefix = created_by(ticket_uuid)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:  # one round trip, the keys as a binary array (see records.fetch_existing)
            cursor.execute(
                "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
                "SELECT %s, r.key, r.uuid, r.data, r.ticket FROM records r "
                "WHERE r.dataset_id = %s AND r.key = ANY(%b) AND substr(r.uuid, 1, %s) <> %s "
                "ON CONFLICT (ticket, key) DO NOTHING",
                (ticket, dataset_id, list(keys), PREFIX, prefix),
            )
        finally:
            cursor.close()
        return
    conn.execute(
        sa.text(
            "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
            "SELECT :t, r.key, r.uuid, r.data, r.ticket FROM records r "
            "WHERE r.dataset_id = :ds AND r.key IN (SELECT value FROM json_each(:keys)) "
            "AND substr(r.uuid, 1, :n) <> :prefix "
            "ON CONFLICT (ticket, key) DO NOTHING"
        ),
        {"t": ticket, "keys": _json.encode(list(keys)).decode(), "ds": dataset_id, "n": PREFIX, "prefix": prefix},
    )


def keep_staged(conn: sa.Connection, dataset_id: int, ticket: int) -> None:
    """Before an atomic import's staging is merged: remember the current record of every staged key that has one."""
    conn.execute(
        sa.text(
            "INSERT INTO before_images (ticket, key, uuid, data, prev_ticket) "
            "SELECT s.ticket, s.key, r.uuid, r.data, r.ticket FROM staged s "
            "JOIN records r ON r.dataset_id = :ds AND r.key = s.key WHERE s.ticket = :t "
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
    """What reverting one page did, and where the next page goes on."""

    deleted: int
    restored: int
    conflicts: int
    phase: RevertPhase  # the phase the next page goes on in
    last_key: str | None  # the cursor in that phase: the next page starts after this key
    more: bool  # whether anything is left to revert after this page


def revert_page(
    conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, phase: RevertPhase, after: str | None,
    limit: int, *, force: bool,
) -> RevertPage:
    """Undo up to `limit` records of the import, in two phases, each in key order after `after`.

    First the before-images: a record the import changed gets its old values back. Then the records
    the import created (named by its id, see record_ids) are deleted. A record whose last writer is
    no longer this import was changed later: a conflict, left as it is unless `force`.
    """
    deleted = restored = conflicts = 0
    if phase == "images":
        rows = _image_rows(conn, dataset_id, ticket, after, limit + 1)
        deletes, restores, conflicts = _from_images(rows[:limit], dataset_id, ticket, force)
        _put_back(conn, dataset_id, deletes, restores)
        deleted, restored = len(deletes), len(restores)
        if len(rows) > limit:
            return RevertPage(deleted, restored, conflicts, "images", rows[limit - 1][0], True)
        limit -= len(rows)  # the rest of the page goes to the created records
        after = None
        if limit == 0:
            return RevertPage(deleted, restored, conflicts, "created", None, True)
    created = _created_rows(conn, dataset_id, ticket, ticket_uuid, after, limit + 1)
    deletes = [key for key, current in created[:limit] if force or current == ticket]
    conflicts += min(len(created), limit) - len(deletes)
    _put_back(conn, dataset_id, deletes, [])
    more = len(created) > limit
    last = created[limit - 1][0] if more else None
    return RevertPage(deleted + len(deletes), restored, conflicts, "created", last, more)


def _image_rows(conn: sa.Connection, dataset_id: int, ticket: int, after: str | None, limit: int) -> list[Any]:
    """The import's before-images after `after` in key order, each with the key's current record (if any)."""
    query = (
        "SELECT b.key, b.uuid, b.data, b.prev_ticket, r.key, r.ticket FROM before_images b "
        "LEFT JOIN records r ON r.dataset_id = :ds AND r.key = b.key WHERE b.ticket = :t"
        + ("" if after is None else " AND b.key > :after")
        + " ORDER BY b.key LIMIT :lim"
    )
    params: dict[str, Any] = {"ds": dataset_id, "t": ticket, "lim": limit}
    if after is not None:
        params["after"] = after
    return list(conn.execute(sa.text(query), params))


def _from_images(
    rows: Sequence[Any], dataset_id: int, ticket: int, force: bool
) -> tuple[list[str], list[dict[str, Any]], int]:
    """What a page of before-images asks for: keys to delete, records to restore, and conflicts."""
    deletes: list[str] = []
    restores: list[dict[str, Any]] = []
    conflicts = 0
    for key, uuid, data, prev_ticket, present, current in rows:
        if not force and (present is None or current != ticket):
            conflicts += 1
        elif data is None:  # an image of a record the import created (logs from before lean images)
            deletes.append(key)
        else:
            restores.append({"ds": dataset_id, "key": key, "uuid": uuid, "data": data, "ticket": prev_ticket})
    return deletes, restores, conflicts


def _created_rows(
    conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, after: str | None, limit: int
) -> list[Any]:
    """The records the import created (their ids carry its uuid) after `after` in key order, with their last writer.

    One walk of the dataset in key order over the whole revert: records have no index by id. Keys
    that have a before-image were handled by the first phase (logs from before lean images).
    """
    query = (
        "SELECT r.key, r.ticket FROM records r WHERE r.dataset_id = :ds AND substr(r.uuid, 1, :n) = :prefix"
        + ("" if after is None else " AND r.key > :after")
        + " AND NOT EXISTS (SELECT 1 FROM before_images b WHERE b.ticket = :t AND b.key = r.key)"
        " ORDER BY r.key LIMIT :lim"
    )
    params: dict[str, Any] = {"ds": dataset_id, "n": PREFIX, "prefix": created_by(ticket_uuid), "t": ticket, "lim": limit}
    if after is not None:
        params["after"] = after
    return list(conn.execute(sa.text(query), params))


def _put_back(conn: sa.Connection, dataset_id: int, deletes: list[str], restores: list[dict[str, Any]]) -> None:
    """Delete these keys' records and restore these records."""
    if conn.dialect.name == "postgresql":
        _put_back_pg(conn, dataset_id, deletes, restores)
        return
    for start in range(0, len(deletes), _BATCH):
        conn.execute(
            sa.text("DELETE FROM records WHERE dataset_id = :ds AND key IN :keys").bindparams(
                sa.bindparam("keys", expanding=True)
            ),
            {"ds": dataset_id, "keys": deletes[start : start + _BATCH]},
        )
    if restores:
        conn.execute(sa.text(_RESTORE), restores)
