"""Schema migrations on SQLite and PostgreSQL: a database from before alembic is adopted with its data,
replicas that start together take turns, and the migrations build exactly what events/tables.py says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from actors.settings import load_settings
from actors.worker import EmbeddedWorker
from app.tenants import create_tenant
from app.wiring import make_runtime
from events import catalog, migrations, records, tables
from events.datasets import parse_schema
from events.db import make_engine, read_tx, write_tx
from events.log import now
from events.tables import metadata
from tests.support import CONTACTS_SCHEMA, Harness, contacts, upgrade_to, write_csv

# What metadata.create_all made at d4488ae, the last commit before migrations: revision 0001 is that
# schema, and a database without alembic_version has it. Tables and columns added since come in later revisions.
BEFORE_MIGRATIONS = ("tenants", "credentials", "datasets", "tickets", "events", "records", "staged", "batches")
ADDED_COLUMNS = {("tickets", "secret_callback"), ("staged", "base")}  # 0004, 0005
DROPPED_KEYS = {("records", "dataset_id"), ("staged", "ticket")}  # 0006: foreign keys of row tables


def _before_migrations() -> sa.MetaData:
    """The tables as they were before migrations, with the columns added since (ADDED_COLUMNS)."""
    before = sa.MetaData()
    for name in BEFORE_MIGRATIONS:
        metadata.tables[name].to_metadata(before)
    return before


def _added_since(diff: Any) -> bool:
    """A difference that later revisions make to a table from before migrations: a column they add,
    a foreign key they drop."""
    if isinstance(diff, tuple) and diff[0] == "remove_fk":
        fk = diff[1]
        return (fk.table.name, *fk.column_keys) in DROPPED_KEYS
    return isinstance(diff, tuple) and diff[0] == "add_column" and (diff[2], diff[3].name) in ADDED_COLUMNS


def _differences(engine: sa.Engine, tables: sa.MetaData = metadata) -> list[Any]:
    """What alembic's autogenerate would write for this database: nothing when it matches the tables."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), tables))


def _revision(engine: sa.Engine) -> str | None:
    with read_tx(engine) as conn:
        return migrations.current(conn)


def _import(h: Harness, token: str, tmp: Path, rows: int, name: str) -> Any:
    resp = h.upload(token, write_csv(tmp / name, contacts(rows)), dataset="contacts")
    assert resp.status_code == 202, resp.text
    return h.wait(resp.json()["id"])


def test_the_versions_folder_is_one_numbered_line_whose_last_file_is_head() -> None:
    """Given versions/, alembic sees one head, the one `head()` reads from the file names, and each
    NNNN_what.py holds revision NNNN revising the one numbered before it."""
    script = ScriptDirectory(str(migrations.location()))
    assert script.get_heads() == [migrations.head()]
    for rev in script.walk_revisions():
        assert rev.path is not None
        assert Path(rev.path).name.startswith(f"{rev.revision}_"), rev.path
        assert re.fullmatch(r"\d{4}", rev.revision), rev.revision
        expected_down = None if rev.revision == migrations.BASELINE else f"{int(rev.revision) - 1:04d}"
        assert rev.down_revision == expected_down, (rev.revision, rev.down_revision)


def test_a_fresh_database_is_migrated_to_head_and_matches_the_tables(db_url: str) -> None:
    """Given an empty database, make_engine runs the migrations: the version is head and alembic's
    autogenerate finds nothing between the database and events/tables.py."""
    engine = make_engine(db_url)
    try:
        assert _revision(engine) == migrations.head()
        assert _differences(engine) == []
        assert migrations.upgrade(engine) == (migrations.head(), migrations.head())  # at head: nothing to do
    finally:
        engine.dispose()


def test_revision_0001_is_the_schema_from_before_migrations_and_later_ones_lead_to_head(db_url: str) -> None:
    """Given an empty database migrated to 0001 only, autogenerate finds nothing between it and the
    tables create_all made before migrations; the rest of the upgrade then brings it to the tables."""
    engine = make_engine(db_url, upgrade=False)
    try:
        with write_tx(engine) as conn:
            upgrade_to(conn, migrations.BASELINE)
        assert _revision(engine) == migrations.BASELINE
        assert [d for d in _differences(engine, _before_migrations()) if not _added_since(d)] == []

        assert migrations.upgrade(engine) == (migrations.BASELINE, migrations.head())

        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_keeps_its_data_and_imports_still_work(db_url: str, tmp_path: Path) -> None:
    """Given a database made as the code before alembic made it (metadata.create_all) holding a tenant,
    a dataset and a finished import, the upgrade stamps it 0001 instead of re-creating it and runs the
    later revisions: the data stays, the schema matches the tables, and a new import on it completes."""
    old = make_engine(db_url, upgrade=False)
    # Today's code writes today's tables (before-images too), so the data is made with all of them;
    # then the tables added since are dropped: what is left is what every start made before migrations.
    metadata.create_all(old)
    settings = load_settings(env={}, data_dir=str(tmp_path / "data"), database_url=db_url, chunk_size=500)
    rt = make_runtime(settings, engine=old)
    before = Harness(rt, EmbeddedWorker(rt, threads=2), tmp_path)
    before.worker.start()
    try:
        token = str(before.tenant("acme")["native"]["token"])
        before.dataset("acme")
        first = _import(before, token, tmp_path, 700, "before.csv")
        assert first.state == "completed" and first.created == 700
    finally:
        before.stop()
    later = [t for name, t in metadata.tables.items() if name not in BEFORE_MIGRATIONS]
    metadata.drop_all(old, tables=later)
    with old.begin() as conn:
        for table, column in sorted(ADDED_COLUMNS):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    engine = make_engine(db_url, upgrade=False)
    assert _revision(engine) is None
    assert not sa.inspect(engine).has_table("retired_credentials")  # 0002's table: the old code had none

    assert migrations.upgrade(engine) == (None, migrations.head())

    assert _revision(engine) == migrations.head()
    assert _differences(engine) == []
    engine.dispose()
    after = Harness.start(tmp_path, database_url=db_url)
    try:
        assert after.rt.view(first.ticket) == first
        second = _import(after, token, tmp_path, 800, "after.csv")  # the old tenant's token, the old dataset
        assert second.state == "completed" and (second.created, second.updated + second.unchanged) == (100, 700)
        assert len(after.records("acme")) == 800
    finally:
        after.stop()


def test_replicas_that_upgrade_a_fresh_database_at_once_take_turns(db_url: str) -> None:
    """Given four processes' engines starting on one empty database at the same moment, none fails:
    exactly one runs the migrations, the others wait for it and find the schema at head."""
    barrier = threading.Barrier(4)
    results: list[tuple[str | None, str]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            engine = make_engine(db_url, upgrade=False)
            barrier.wait(timeout=30)
            results.append(migrations.upgrade(engine))
            engine.dispose()
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    head = migrations.head()
    assert sorted(results, key=lambda r: r[0] or "") == [(None, head)] + [(head, head)] * 3
    engine = make_engine(db_url, upgrade=False)
    assert _revision(engine) == head and _differences(engine) == []
    engine.dispose()


# What serve and worker do before they start (app.cli): then whether this process loaded alembic.
BEFORE_SERVE = """
import sys
from app.cli_db import upgrade_in_a_process
upgrade_in_a_process(sys.argv[1])
print("alembic" in sys.modules)
"""


def test_serve_and_worker_migrate_in_a_short_lived_process_and_never_load_alembic(db_url: str) -> None:
    """Given an empty database, the step serve and worker take before starting brings it to head in
    a process of its own: the long-lived process never imports alembic (it would keep ~10 MB)."""
    run = [sys.executable, "-c", BEFORE_SERVE, db_url]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [json.dumps({"from": None, "to": migrations.head(), "changed": True}), "False"]
    engine = make_engine(db_url, upgrade=False)
    assert _revision(engine) == migrations.head()
    engine.dispose()
    again = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stdout) == (0, "False\n")  # at head: one read, no process started


def _dataset_and_ticket(conn: sa.Connection) -> tuple[catalog.DatasetRow, int]:
    """A tenant's dataset and an import into it, made through the catalog at an older revision."""
    create_tenant(conn, "acme")
    tenant = catalog.tenant_by_name(conn, "acme")
    assert tenant is not None
    dataset, _ = catalog.put_dataset(conn, tenant.id, "contacts", parse_schema(CONTACTS_SCHEMA), now())
    ticket = catalog.insert_ticket(
        conn, uuid=str(uuid.uuid4()), tenant_id=tenant.id, dataset_id=dataset.id, dialect="native",
        dedup_key=None, has_callback=False, secret_uri=None, at=now(),
    )
    return dataset, ticket


def test_rows_staged_before_0005_take_their_records_as_they_are_at_the_upgrade_as_base(db_url: str) -> None:
    """Given an atomic import's staging at revision 0004 (one key with a record, one without), the upgrade
    fills staged.base from the records: the import is not refused for what it could not have recorded,
    and a change made after the upgrade is still found."""
    engine = make_engine(db_url, upgrade=False)
    try:
        with write_tx(engine) as conn:
            upgrade_to(conn, "0004")
            dataset, ticket = _dataset_and_ticket(conn)
            conn.execute(tables.records.insert().values(dataset_id=dataset.id, key="old", uuid="u0", data='{"n":1}'))
            conn.execute(sa.text("INSERT INTO staged (ticket, key, uuid, data) VALUES (:t, :k, :u, :d)"), [
                {"t": ticket, "k": "old", "u": "u1", "d": '{"n":2}'}, {"t": ticket, "k": "new", "u": "u2", "d": '{"n":3}'},
            ])  # the columns staged had then
        assert migrations.upgrade(engine) == ("0004", migrations.head())
        with read_tx(engine) as conn:
            bases = {key: base for key, base in conn.execute(sa.text("SELECT key, base FROM staged"))}
            assert bases == {"old": '{"n":1}', "new": None}
            assert records.stale_staging(conn, dataset.id, ticket) is None
        with write_tx(engine) as conn:
            conn.execute(tables.records.update().where(tables.records.c.key == "old").values(data='{"n":9}'))
            assert records.stale_staging(conn, dataset.id, ticket) == (1, "old")
    finally:
        engine.dispose()


def test_0006_drops_the_row_tables_foreign_keys_and_keeps_their_rows(db_url: str) -> None:
    """Given records, staging and before-images at revision 0005 (with their foreign keys), the upgrade
    drops the keys (SQLite by rebuilding each table) and every row, id and index survives it."""
    engine = make_engine(db_url, upgrade=False)
    try:
        with write_tx(engine) as conn:
            upgrade_to(conn, "0005")
            assert {t: sa.inspect(conn).get_foreign_keys(t) != [] for t in ("records", "staged", "before_images")} == {
                "records": True, "staged": True, "before_images": True}
            dataset, ticket = _dataset_and_ticket(conn)
            conn.execute(tables.records.insert(), [
                {"dataset_id": dataset.id, "key": f"k{i}", "uuid": f"u{i}", "data": f'{{"n":{i}}}', "ticket": ticket} for i in range(50)
            ])
            conn.execute(tables.staged.insert().values(ticket=ticket, key="s", uuid="us", data="{}", base=None))
            conn.execute(tables.before_images.insert().values(ticket=ticket, key="k1", uuid="u1", data='{"n":0}', prev_ticket=None))
            before = {t: list(conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY key"))) for t in ("records", "staged", "before_images")}
        assert migrations.upgrade(engine) == ("0005", migrations.head())
        with read_tx(engine) as conn:
            inspector = sa.inspect(conn)
            assert [inspector.get_foreign_keys(t) for t in ("records", "staged", "before_images")] == [[], [], []]
            assert {t: list(conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY key"))) for t in before} == before
        assert _differences(engine) == []
        with write_tx(engine) as conn, pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # the unique key holds
            conn.execute(tables.records.insert().values(dataset_id=dataset.id, key="k1", uuid="x", data="{}"))
    finally:
        engine.dispose()
