"""The floors: bare loops over the same files with the same drivers, each run in its own process.

`python -m bench.floors KIND ARGS...` runs one floor and prints {"rows": n, "seconds": s} as JSON;
bench.run starts it as a child so its peak RSS is sampled like the service's and nothing it
allocates stays in the harness. The time covers the work only (not interpreter start-up).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

COPY_BLOCK = 1 << 20

SQLITE_TABLE = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, name TEXT, amount NUMERIC, signup TEXT, "
    "active TEXT, category TEXT, note TEXT, quantity INTEGER, country TEXT)"
)
PG_TABLE = (
    "CREATE TABLE {table} (id bigint PRIMARY KEY, email text, name text, amount numeric(12, 2), "
    "signup date, active boolean, category text, note text, quantity integer, country text)"
)


def sqlite_floor(csv_path: str, db_path: str) -> int:
    """csv.reader + sqlite3 executemany into a PK table, in one transaction (WAL, synchronous=NORMAL as the service)."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SQLITE_TABLE)
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        db.execute("BEGIN")
        cur = db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", reader)
        count = cur.rowcount
        db.execute("COMMIT")
    db.close()
    return int(count)


def _pg_table(conn: object, table: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")  # type: ignore[attr-defined]
    conn.execute(PG_TABLE.format(table=table))  # type: ignore[attr-defined]


def pg_copy_floor(csv_path: str, dsn: str, table: str = "floor_copy") -> int:
    """The file's bytes streamed through psycopg COPY ... FROM STDIN (FORMAT csv), one transaction."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        _pg_table(conn, table)
        with conn.cursor() as cur:
            with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, open(csv_path, "rb") as f:
                while block := f.read(COPY_BLOCK):
                    copy.write(block)
            count = cur.rowcount
        conn.commit()
    return int(count)


def pg_loop_floor(csv_path: str, dsn: str, table: str = "floor_loop") -> int:
    """csv.reader + psycopg COPY write_row per row (the same loop as the SQLite floor), one transaction."""
    import psycopg

    count = 0
    with psycopg.connect(dsn) as conn:
        _pg_table(conn, table)
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy, open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                copy.write_row(row)
                count += 1
        conn.commit()
    return count


def calamine_floor(path: str) -> int:
    """python-calamine: open the workbook and walk every row of the first sheet."""
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_path(path).get_sheet_by_index(0)
    count = -1  # the header row
    for _row in sheet.iter_rows():
        count += 1
    return count


def openpyxl_floor(path: str) -> int:
    """openpyxl in read-only mode: walk every row of the first sheet (values only)."""
    import warnings

    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    count = -1
    for _row in book.worksheets[0].iter_rows(values_only=True):
        count += 1
    book.close()
    return count


def xlrd_floor(path: str) -> int:
    """xlrd: open the XLS and walk every row of the first sheet."""
    import xlrd

    book = xlrd.open_workbook(path, on_demand=True)
    sheet = book.sheet_by_index(0)
    count = -1
    for _row in sheet.get_rows():
        count += 1
    book.release_resources()
    return count


FLOORS: dict[str, Callable[..., int]] = {
    "sqlite": sqlite_floor,
    "pg_copy": pg_copy_floor,
    "pg_loop": pg_loop_floor,
    "calamine": calamine_floor,
    "openpyxl": openpyxl_floor,
    "xlrd": xlrd_floor,
}


def main(argv: list[str]) -> int:
    """Run one floor and print its row count and seconds as JSON."""
    kind, *args = argv
    if kind not in FLOORS:
        print(f"unknown floor {kind!r}; one of {', '.join(FLOORS)}", file=sys.stderr)
        return 2
    if kind == "sqlite":
        Path(args[1]).unlink(missing_ok=True)
    start = time.perf_counter()
    rows = FLOORS[kind](*args)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": rows, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
