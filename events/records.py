"""Dataset records: look up keys, write a chunk's decisions, merge or discard atomic staging."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa

from events import before_images
from events.decisions import Write
from events.record_ids import created_by, creating_row, record_uuid

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])
_BATCH = 900  # stay under SQLite's bound-parameter limit


def created_rows(
    conn: sa.Connection, dataset_id: int, ticket_uuid: str, keys: Sequence[str], staged_ticket: int | None = None
) -> dict[str, int]:
    """Which of these keys' records this ticket created, and from which row index (read off the record id).

    For insert imports: a staged row of an update or replace import carries the ticket's id too.
    """
    prefix = created_by(ticket_uuid)
    tables = [("records", "dataset_id", dataset_id)]
    if staged_ticket is not None:
        tables.append(("staged", "ticket", staged_ticket))
    found: dict[str, int] = {}
    for table, column, owner in tables:
        for start in range(0, len(keys), _BATCH):
            query = sa.text(f"SELECT key, uuid FROM {table} WHERE {column} = :owner AND key IN :keys").bindparams(
                sa.bindparam("keys", expanding=True)
            )
            for key, uuid in conn.execute(query, {"owner": owner, "keys": list(keys[start : start + _BATCH])}):
                if uuid.startswith(prefix):
                    found[key] = creating_row(uuid)
    return found


def _insert_rows(
    conn: sa.Connection, head: str, tail: str, rows: Sequence[tuple[Any, ...]], tail_params: Sequence[Any] = ()
) -> None:
    """SQLite: many rows per INSERT statement (as many as its bound-parameter limit allows).

    One statement per few thousand rows instead of executemany's one step per row: the sqlite3
    module releases the GIL around each step, so a per-row step makes a chunk's insert hand the
    interpreter back and forth thousands of times while another thread (the parse reading on) runs.
    `tail_params` are bound after the rows' values, for placeholders in `tail`.
    """
    dbapi = conn.connection.dbapi_connection
    width = len(rows[0])
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    per = max(1, (limit - len(tail_params)) // width)
    group = "(" + ",".join("?" * width) + ")"
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), per):
            batch = rows[start : start + per]
            cursor.execute(
                f"{head} VALUES {','.join([group] * len(batch))} {tail}", [v for row in batch for v in row] + list(tail_params)
            )
    finally:
        cursor.close()


def fetch_existing(
    conn: sa.Connection, dataset_id: int, keys: Iterable[str], staged_ticket: int | None = None
) -> dict[str, dict[str, Any]]:
    """Current values of the given keys: staged values of an atomic import win over records."""
    keys = list(keys)
    found: dict[str, dict[str, Any]] = {}
    decode = _decode.decode
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            # One round trip with an array parameter, sent in binary (%b): psycopg's text-array
            # quoting runs a regex per element, 25x slower for a 5,000-key chunk.
            cursor.execute("SELECT key, data FROM records WHERE dataset_id = %s AND key = ANY(%b)", (dataset_id, keys))
            found.update((key, decode(data)) for key, data in cursor.fetchall())
            if staged_ticket is not None:
                cursor.execute("SELECT key, data FROM staged WHERE ticket = %s AND key = ANY(%b)", (staged_ticket, keys))
                found.update((key, decode(data)) for key, data in cursor.fetchall())
            return found
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            cursor.execute(f"SELECT key, data FROM records WHERE dataset_id = ? AND key IN ({marks})", [dataset_id, *batch])
            for key, data in cursor.fetchall():
                found[key] = decode(data)
            if staged_ticket is not None:
                cursor.execute(f"SELECT key, data FROM staged WHERE ticket = ? AND key IN ({marks})", [staged_ticket, *batch])
                for key, data in cursor.fetchall():
                    found[key] = decode(data)
    finally:
        cursor.close()
    return found


_UPSERT_RECORDS = (
    "INSERT INTO records (dataset_id, key, uuid, data, ticket)",
    "ON CONFLICT (dataset_id, key) DO UPDATE SET data = excluded.data, ticket = excluded.ticket",
)
# Staging keeps the key's record data as it is now in `base` (NULL: no record), the first time the
# import stages the key only: a later chunk's upsert replaces `data`, never `base`. Under the
# dataset lock, as the chunk's decisions, so `base` is what they were decided against.
# (WHERE true: SQLite's parser needs it between a join and ON CONFLICT.)
_UPSERT_STAGED = (
    "INSERT INTO staged (ticket, key, uuid, data, base) "
    "SELECT v.column1, v.column2, v.column3, v.column4, r.data FROM (",
    ") AS v LEFT JOIN records r ON r.dataset_id = ? AND r.key = v.column2 WHERE true "
    "ON CONFLICT (ticket, key) DO UPDATE SET data = excluded.data",
)


def write(
    conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, writes: Sequence[Write], *, staged: bool
) -> None:
    """Carry out a chunk's writes, to the records (keeping their before-images) or (atomic) to the ticket's staging."""
    if not writes:
        return
    if not staged:
        before_images.keep(conn, dataset_id, ticket, ticket_uuid, [w.key for w in writes if not w.new])
    encode = _json.encode
    if conn.dialect.name == "postgresql":
        _write_pg(conn, dataset_id, ticket, ticket_uuid, writes, staged=staged)
        return
    rows: list[tuple[Any, ...]]
    if staged:
        rows = [(ticket, w.key, record_uuid(ticket_uuid, w.index), encode(w.values).decode()) for w in writes]
        _insert_rows(conn, *_UPSERT_STAGED, rows, tail_params=(dataset_id,))
    else:
        rows = [(dataset_id, w.key, record_uuid(ticket_uuid, w.index), encode(w.values).decode(), ticket) for w in writes]
        _insert_rows(conn, *_UPSERT_RECORDS, rows)


def _write_pg(
    conn: sa.Connection, dataset_id: int, ticket: int, ticket_uuid: str, writes: Sequence[Write], *, staged: bool
) -> None:
    """PostgreSQL: a chunk's new records by COPY, its updates in one statement over unnest()ed arrays.

    The chunk decided under the dataset's write lock, so a new record's key is free: COPY needs no
    conflict check and is about twice as fast as an upsert. The arrays go in binary (%b): text-format
    arrays are quoted element by element in Python.
    """
    encode = _json.encode
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if staged:
            cursor.execute(  # `base` as in _UPSERT_STAGED
                "INSERT INTO staged (ticket, key, uuid, data, base) "
                "SELECT %s, t.k, t.u, t.d, r.data FROM unnest(%b::text[], %b::text[], %b::text[]) AS t(k, u, d) "
                "LEFT JOIN records r ON r.dataset_id = %s AND r.key = t.k "
                "ON CONFLICT (ticket, key) DO UPDATE SET data = excluded.data",
                (
                    ticket, [w.key for w in writes], [record_uuid(ticket_uuid, w.index) for w in writes],
                    [encode(w.values).decode() for w in writes], dataset_id,
                ),
            )
            return
        updates = [w for w in writes if not w.new]
        if len(updates) < len(writes):
            with cursor.copy("COPY records (dataset_id, key, uuid, data, ticket) FROM STDIN") as copy:
                for piece in _copy_payload(dataset_id, ticket, ticket_uuid, writes):
                    copy.write(piece)
        if updates:
            cursor.execute(
                "UPDATE records r SET data = t.d, ticket = %s FROM unnest(%b::text[], %b::text[]) AS t(k, d) "
                "WHERE r.dataset_id = %s AND r.key = t.k",
                (ticket, [w.key for w in updates], [encode(w.values).decode() for w in updates], dataset_id),
            )
            if cursor.rowcount != len(updates):  # the lock makes this impossible; never lose a row quietly
                raise RuntimeError(f"{len(updates) - cursor.rowcount} of {len(updates)} records to update are gone")
    finally:
        cursor.close()


def _copy_payload(dataset_id: int, ticket: int, ticket_uuid: str, writes: Sequence[Write]) -> Iterator[str]:
    """A chunk's new records in COPY's text format, in pieces of 500: about half of psycopg's CPU row
    by row, and the server parses a piece while the next is made.

    Keys and data are JSON text, which holds no raw tab, newline or carriage return (JSON escapes
    them), so the only character COPY's text format needs escaped in them is the backslash, and no
    other column can hold one: doubling every backslash in a piece escapes exactly those.
    """
    encode = _json.encode
    tail = f"\t{ticket}\n"
    new = [w for w in writes if w.new]
    for start in range(0, len(new), _COPY_PIECE):
        piece = new[start:start + _COPY_PIECE]
        text = "".join([f"{dataset_id}\t{w.key}\t{record_uuid(ticket_uuid, w.index)}\t{encode(w.values).decode()}{tail}" for w in piece])
        if text.count("\n") != len(piece) or text.count("\t") != 4 * len(piece) or "\r" in text:
            raise ValueError("a record key holds a tab, newline or carriage return")  # never: keys are JSON text
        yield text.replace("\\", "\\\\") if "\\" in text else text


_COPY_PIECE = 500


class StaleStaging(NamedTuple):
    """Staged keys whose record another writer changed since the import staged them."""

    changed: int  # how many
    first_key: str  # the first of them in the import's file


def stale_staging(conn: sa.Connection, dataset_id: int, ticket: int) -> StaleStaging | None:
    """Whether any staged key's record no longer holds the `base` it was decided against (call under the dataset lock).

    One pass over the ticket's staging, each key joined to its record on the records' unique
    (dataset_id, key) index; what changed is counted and sorted on its own (nothing, without a
    conflict: sorting the staging first doubled the time on PostgreSQL). A staged row's uuid carries
    the index of the row that first staged it, so ordering by it gives file order.
    """
    differs = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    changed, first = conn.execute(
        sa.text(
            "WITH changed AS (SELECT s.key, s.uuid FROM staged s "
            "LEFT JOIN records r ON r.dataset_id = :ds AND r.key = s.key "
            f"WHERE s.ticket = :t AND r.data {differs} s.base) "
            "SELECT (SELECT count(*) FROM changed), (SELECT key FROM changed ORDER BY uuid LIMIT 1)"
        ),
        {"ds": dataset_id, "t": ticket},
    ).one()
    return StaleStaging(int(changed), str(first)) if changed else None


def merge_staged(conn: sa.Connection, dataset_id: int, ticket: int) -> int:
    """Move an atomic import's staged rows into the dataset (keeping their before-images); returns how many."""
    before_images.keep_staged(conn, dataset_id, ticket)
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
    after = min(after, 2**63 - 1)  # a cursor past any id the database can hold: nothing after it
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
