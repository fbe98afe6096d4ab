"""Test helpers: service discovery, a running harness, file makers, waiting on the log."""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import socket
import time
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn
from urllib.parse import urlparse

import pytest
from litestar.testing import TestClient

from actors.runtime import Runtime
from actors.worker import EmbeddedWorker
from app.main import create_app
from app.settings import Settings, load_settings
from app.tenants import create_tenant
from events import catalog
from events.datasets import parse_schema
from events.db import write_tx
from events.log import now
from events.projections import ImportView


def redis_url() -> str:
    """Where tests find Redis."""
    return os.environ.get("IMPORTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def postgres_url() -> str:
    """Where tests find PostgreSQL."""
    return os.environ.get("IMPORTER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def service_available(service: str) -> str | None:
    """None when the service answers, else why not."""
    url = urlparse(redis_url() if service == "redis" else postgres_url())
    port = url.port or (6379 if service == "redis" else 5432)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


CONTACTS_SCHEMA = {
    "fields": [
        {"name": "email", "type": "email", "required": True},
        {"name": "name", "type": "string"},
        {"name": "age", "type": "integer"},
        {"name": "balance", "type": "decimal"},
        {"name": "active", "type": "boolean"},
        {"name": "joined", "type": "date"},
    ],
    "key": ["email"],
}


class Harness:
    """A runtime with a worker consuming, plus an HTTP test client over the same runtime."""

    def __init__(self, rt: Runtime, worker: EmbeddedWorker, tmp: Path) -> None:
        self.rt = rt
        self.worker = worker
        self.tmp = tmp
        self._client: TestClient[Any] | None = None

    @classmethod
    def start(cls, tmp: Path, **overrides: Any) -> Harness:
        overrides.setdefault("data_dir", str(tmp / "data"))
        overrides.setdefault("chunk_size", 500)  # small chunks: every test crosses chunk boundaries
        overrides.setdefault("retry_min_backoff_ms", 10)
        overrides.setdefault("retry_max_backoff_ms", 100)
        overrides.setdefault("allowed_hosts", "127.0.0.1,localhost,::1")
        settings = load_settings(env={}, **overrides)
        rt = Runtime(settings)
        worker = EmbeddedWorker(rt, threads=2)
        worker.start()
        return cls(rt, worker, tmp)

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    @property
    def client(self) -> TestClient[Any]:
        if self._client is None:
            self._client = TestClient(create_app(runtime=self.rt, run_worker=False))
            self._client.__enter__()
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
        self.worker.stop()
        self.rt.close()

    def tenant(self, name: str = "acme") -> dict[str, Any]:
        with write_tx(self.rt.engine) as conn:
            return create_tenant(conn, name)

    def dataset(self, tenant: str, name: str = "contacts", schema: dict[str, Any] | None = None) -> None:
        with write_tx(self.rt.engine) as conn:
            row = catalog.tenant_by_name(conn, tenant)
            assert row is not None
            catalog.put_dataset(conn, row.id, name, parse_schema(schema or CONTACTS_SCHEMA), now())

    def wait(self, ticket: int, timeout: float = 60.0, until: str = "terminal") -> ImportView:
        """Wait on the event log until the ticket is terminal (or settled, callbacks included)."""
        deadline = time.monotonic() + timeout
        view = None
        while time.monotonic() < deadline:
            view = self.rt.view(ticket)
            if view is not None and view.terminal:
                if until == "terminal":
                    return view
                if until == "settled" and (view.webhook.delivered_at or view.webhook.abandoned or not view.spec or not view.spec.callback_url):
                    return view
            time.sleep(0.02)
        raise AssertionError(f"ticket {ticket} did not finish in {timeout}s; last view: {view}")

    def batch_ticket(self, tenant: str, batch: str) -> int:
        """The ticket of an admin batch's upload."""
        from events.db import read_tx

        with read_tx(self.rt.engine) as conn:
            t = catalog.tenant_by_name(conn, tenant)
            assert t is not None
            row = catalog.ticket_by_dedup(conn, t.id, f"batch:{batch}")
        assert row is not None, f"batch {batch} has no upload"
        return row.id

    def records(self, tenant: str, dataset: str = "contacts") -> dict[str, dict[str, Any]]:
        """A dataset's records by key (read straight from the database)."""
        from events.db import read_tx
        from events.records import list_records

        with read_tx(self.rt.engine) as conn:
            t = catalog.tenant_by_name(conn, tenant)
            assert t is not None
            ds = catalog.get_dataset(conn, t.id, dataset)
            assert ds is not None
            out: dict[str, dict[str, Any]] = {}
            after = 0
            while True:
                page, cursor = list_records(conn, ds.id, after=after, limit=1000)
                for r in page:
                    out[r.key] = r.values
                if cursor is None:
                    return out
                after = cursor

    def upload(self, token: str, path: Path, **fields: Any) -> Any:
        with path.open("rb") as fh:
            return self.client.post(
                "/imports",
                data={k: (json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in fields.items()},
                files={"file": (path.name, fh, "application/octet-stream")},
                headers={"Authorization": f"Bearer {token}"},
            )


def write_csv(path: Path, rows: list[list[Any]], *, sep: str = ",", bom: bool = False, newline: str = "\r\n") -> Path:
    """Write rows as CSV (the tests make their own files)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=newline)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode())
    return path


def contacts(n: int, start: int = 0) -> list[list[Any]]:
    """n contact rows with a header."""
    rows: list[list[Any]] = [["email", "name", "age", "balance", "active", "joined"]]
    for i in range(start, start + n):
        rows.append([f"user{i}@example.com", f"User {i}", 20 + i % 50, f"{i}.50", "true" if i % 2 else "false", "2024-01-15"])
    return rows


# ---------------------------------------------------------------- front doors and their error shapes

REQUIRE = os.environ.get("IMPORTER_REQUIRE_SERVICES") == "1"

DOORS = (("/imports", "native"), ("/datasets", "native"), ("/ops/", "ops"), ("/v2/", "yesmail"), ("/api/v4/", "thalamus"),
         ("/objectimport/", "teamtracks"), ("/job/", "teamtracks"), ("/api/adm/", "admin"), ("/api/admin/", "admin"))
ERROR_SCHEMAS = {"native": "NativeError", "ops": "NativeError", "yesmail": "YesmailError", "thalamus": "ThalamusErrors",
                 "teamtracks": "TeamTracksError", "admin": "AdminCommandResponse"}


def door_of(path: str) -> str | None:
    """Which front door a path belongs to (None: health, ready, metrics, the schema)."""
    return next((door for prefix, door in DOORS if path.startswith(prefix)), None)


class ErrorShapes:
    """Each door's error body, checked against that door's own schema in the service's OpenAPI
    document and for what a schema cannot say (the status it repeats, a non-empty sentence)."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        import jsonschema_rs

        self.validators = {
            door: jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": openapi["components"]})
            for door, name in ERROR_SCHEMAS.items()
        }

    def problems(self, path: str, status: int, text: str) -> list[str]:
        """What is wrong with a 4xx answer of `path` (empty: it is the door's error shape)."""
        door = door_of(path)
        if door is None:
            return []
        try:
            body = json.loads(text)
        except ValueError:
            return [f"{door}: not JSON: {text[:200]!r}"]
        found = [f"{door}: {e.message}" for e in self.validators[door].iter_errors(body)]
        if found:
            return found
        sentence = {
            "native": lambda: body["error"]["message"], "ops": lambda: body["error"]["message"],
            "yesmail": lambda: body["error"]["message"], "teamtracks": lambda: body["message"],
            "admin": lambda: body["errorMessage"], "thalamus": lambda: "; ".join(body["errors"].values()),
        }[door]()
        if not (isinstance(sentence, str) and sentence.strip()):
            found.append(f"{door}: no message in {body}")
        repeated = {"yesmail": lambda: body["error"]["status"], "teamtracks": lambda: body["statusCode"],
                    "admin": lambda: body["code"]}.get(door)
        if repeated is not None and repeated() != status:
            found.append(f"{door}: the body says status {repeated()}, the answer is {status}")
        if door == "admin" and body["success"] is not False:
            found.append("admin: an error with success true")
        return found


def unavailable(what: str) -> NoReturn:
    """Skip a test for something this machine lacks; under IMPORTER_REQUIRE_SERVICES=1 (CI), fail it."""
    if REQUIRE:
        pytest.fail(f"{what} (IMPORTER_REQUIRE_SERVICES=1: CI must provide it)")
    pytest.skip(what)


def need_module(name: str) -> ModuleType:
    """Import a test dependency, or skip (fail in CI) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed: {exc}")
