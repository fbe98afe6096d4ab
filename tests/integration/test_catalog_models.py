"""The app's typed catalog rows (SQLModel over the Core tables) on SQLite and PostgreSQL, and the
worker's path that must never load them: SQLModel and pydantic stay out of the worker child."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app.tenants import create_tenant
from events import catalog, catalog_models, tables
from events import log as event_log
from events.catalog_models import Dataset, Tenant, Ticket
from events.datasets import parse_schema
from events.db import make_engine, read_tx, write_tx
from events.log import now
from events.types import WebhookAttempted
from tests.support import CONTACTS_SCHEMA

APP_ONLY = ("sqlmodel", "pydantic", "pydantic_core", "sqlalchemy.orm")

# What serve's worker child (python -m app.worker_child) and `importer worker` import and build
# before their first message; then which of the app-only libraries got loaded.
WORKER_PATH = """
import json, sys
import app.worker_child, actors.worker, app.cli
from actors.settings import load_settings
from app.wiring import make_runtime
rt = make_runtime(load_settings(env={}, data_dir=sys.argv[1]))
rt.close()
print(json.dumps(sorted(m for m in sys.argv[2:] if m in sys.modules)))
"""


def test_the_worker_path_loads_neither_sqlmodel_nor_pydantic(tmp_path: Path) -> None:
    """Given a fresh interpreter that imports the worker child's and `importer worker`'s modules and
    builds their runtime (migrating a new database), none of SQLModel, pydantic or the ORM is loaded."""
    out = subprocess.run(
        [sys.executable, "-c", WORKER_PATH, str(tmp_path / "data"), *APP_ONLY], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_typed_rows_are_mapped_over_the_core_tables_and_add_none() -> None:
    """Given the SQLModel classes, each maps the Core table itself (every field a column of it), and
    the schema's one MetaData holds no table besides the Core ones."""
    for model, table in ((Tenant, tables.tenants), (Dataset, tables.datasets), (Ticket, tables.tickets)):
        assert model.__table__ is table
        mapped = sa.inspect(model).columns
        assert {c.name for c in mapped} == {c.name for c in table.columns}
        assert all(c.table is table for c in mapped)
    assert sa.inspect(Dataset).columns["schema_text"] is tables.datasets.c.schema  # the field named apart from its column
    assert catalog_models.CatalogModel.metadata is tables.metadata
    assert set(tables.metadata.tables) == {
        "tenants", "credentials", "retired_credentials", "datasets", "tickets", "events", "records", "staged", "batches",
        "before_images",
    }


def test_the_listings_read_typed_rows_newest_first_by_tenant_and_page(db_url: str) -> None:
    """Given two tenants with three and one tickets (one of them with a callback attempt), the reads
    return typed rows with their tenant's and dataset's names, filtered, paged and ordered."""
    engine = make_engine(db_url)
    start = now()
    try:
        with write_tx(engine) as conn:
            ids: dict[str, list[int]] = {}
            for name, count in (("acme", 3), ("other", 1)):
                create_tenant(conn, name)
                owner = catalog.tenant_by_name(conn, name)
                assert owner is not None
                dataset, _ = catalog.put_dataset(conn, owner.id, f"{name}-contacts", parse_schema(CONTACTS_SCHEMA), start)
                ids[name] = [
                    catalog.insert_ticket(
                        conn, uuid=str(uuid.uuid4()), tenant_id=owner.id, dataset_id=dataset.id, dialect="native",
                        dedup_key=None, has_callback=False, secret_uri=None, at=start + timedelta(seconds=i),
                    )
                    for i in range(count)
                ]
            event_log.append(conn, ids["acme"][1], 0, [WebhookAttempted(at=start, url="http://x/", attempt=1, webhook_id="w")])
        acme = ids["acme"]
        with read_tx(engine) as conn:
            newest = catalog_models.tickets_newest_first(conn, tenant_name="acme", since=None, before=None, limit=2)
            assert [r.ticket.id for r in newest] == [acme[2], acme[1]]
            assert all(isinstance(r.ticket, Ticket) for r in newest)
            assert {(r.tenant, r.dataset, r.ticket.dialect) for r in newest} == {("acme", "acme-contacts", "native")}
            rest = catalog_models.tickets_newest_first(conn, tenant_name="acme", since=None, before=acme[1], limit=2)
            assert [r.ticket.id for r in rest] == [acme[0]]
            recent = catalog_models.tickets_newest_first(
                conn, tenant_name=None, since=start + timedelta(seconds=1), before=None, limit=10
            )
            assert sorted(r.ticket.id for r in recent) == sorted([acme[1], acme[2]])
            assert catalog_models.tickets_newest_first(conn, tenant_name="nobody", since=None, before=None, limit=10) == []

            attempted = catalog_models.tickets_with_callback_attempts(conn, tenant_name=None, after=0, limit=10)
            assert [(r.ticket.id, r.tenant) for r in attempted] == [(acme[1], "acme")]
            assert catalog_models.tickets_with_callback_attempts(conn, tenant_name="acme", after=acme[1], limit=10) == []

            row = catalog_models.ticket(conn, ids["other"][0])
            assert row is not None and isinstance(row, Ticket) and row.created_at is not None
            owner_row = catalog_models.tenant(conn, row.tenant_id)
            assert isinstance(owner_row, Tenant) and owner_row.name == "other"
            assert catalog_models.ticket(conn, 2**63) is None and catalog_models.ticket(conn, 0) is None
    finally:
        engine.dispose()
