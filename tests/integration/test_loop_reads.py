"""Short reads on the event loop's thread (app/loop_reads.py): SQLite files only, on a connection of
their own, and back to a worker thread when the loop would have to wait for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.loop_reads import LoopReads
from events.db import make_engine
from events.tables import tickets
from tests.support import Harness, contacts, write_csv


def _thread_of_read(engine: sa.Engine) -> tuple[int, int]:
    """(the loop's thread, the thread the read ran on)."""
    reads = LoopReads(engine)

    async def run() -> tuple[int, int]:
        ran = await reads.run(lambda conn: (conn.execute(sa.select(sa.func.count()).select_from(tickets)), threading.get_ident())[1])
        return threading.get_ident(), ran

    try:
        return asyncio.run(run())
    finally:
        reads.close()


def test_a_sqlite_file_is_read_on_the_loop_and_any_other_database_in_a_thread(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        loop, ran = _thread_of_read(engine)
        assert (ran == loop) is db_url.startswith("sqlite"), db_url
    finally:
        engine.dispose()
    memory = sa.create_engine("sqlite://")
    try:
        assert LoopReads(memory).inline is None  # a second engine would open another, empty, database
    finally:
        memory.dispose()


def test_a_read_the_loop_would_wait_for_goes_to_a_thread(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'importer.db'}")
    reads = LoopReads(engine)
    loop = threading.get_ident()
    seen: list[int] = []

    def read(conn: sa.Connection) -> int:
        seen.append(threading.get_ident())
        if threading.get_ident() == loop:  # the loop's attempt meets a lock past its short wait
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
        return int(conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one())

    def broken(conn: sa.Connection) -> int:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: tickets"))

    try:
        assert asyncio.run(reads.run(read)) == 0
        assert seen[0] == loop and len(seen) == 2 and seen[1] != loop
        seen.clear()
        try:
            asyncio.run(reads.run(broken))  # any other error is the read's answer: no second try
        except OperationalError as exc:
            assert "no such table" in str(exc)
        else:
            raise AssertionError("the error was swallowed")
    finally:
        reads.close()
        engine.dispose()


def test_a_status_poll_answers_while_worker_threads_hold_every_pooled_connection(embedded: Harness, tmp_path: Path) -> None:
    """The loop reads on a connection of its own: were it to wait for a pooled one, every request
    of the process would wait with it (here, for the pool's 30 s timeout)."""
    creds = embedded.tenant("acme")
    embedded.dataset("acme")
    headers = {"Authorization": f"Bearer {creds['native']['token']}"}
    ticket = embedded.upload(creds["native"]["token"], write_csv(tmp_path / "a.csv", contacts(3)), dataset="contacts").json()["id"]
    embedded.wait(ticket)
    pool = embedded.rt.engine.pool
    held = [embedded.rt.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        started = time.monotonic()
        resp = embedded.client.get(f"/imports/{ticket}", headers=headers)
        assert resp.status_code == 200 and resp.json()["state"] == "completed", resp.text
        assert time.monotonic() - started < 10
    finally:
        for conn in held:
            conn.close()
