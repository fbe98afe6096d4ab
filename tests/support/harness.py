"""The service harness: a runtime with a worker consuming, an HTTP test client over it, tenants and datasets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from actors.runtime import Runtime
from actors.settings import Settings, load_settings
from actors.worker import EmbeddedWorker
from app.main import create_app
from app.tenants import create_tenant
from app.wiring import make_runtime
from events import catalog
from events.datasets import parse_schema
from events.db import read_tx, write_tx
from events.log import now
from events.projections import ImportView
from events.records import list_records
from tests.support.files import CONTACTS_SCHEMA
from tests.support.servers import free_port
from tests.support.waiting import settled, terminal, wait_for


class Harness:
    """A runtime with a worker consuming, plus an HTTP test client over the same runtime."""

    def __init__(self, rt: Runtime, worker: EmbeddedWorker, tmp: Path) -> None:
        self.rt = rt
        self.worker = worker
        self.tmp = tmp
        self._client: TestClient[Any] | None = None

    @classmethod
    def start(cls, tmp: Path, **overrides: Any) -> Harness:
        """Settings for tests (small chunks, quick retries, local hosts allowed) and a started worker."""
        overrides.setdefault("data_dir", str(tmp / "data"))
        overrides.setdefault("chunk_size", 500)  # small chunks: every test crosses chunk boundaries
        overrides.setdefault("retry_min_backoff_ms", 10)
        overrides.setdefault("retry_max_backoff_ms", 100)
        overrides.setdefault("allowed_hosts", "127.0.0.1,localhost,::1")
        settings = load_settings(env={}, **overrides)
        rt = make_runtime(settings)
        worker = EmbeddedWorker(rt, threads=2)
        worker.start()
        return cls(rt, worker, tmp)

    @property
    def settings(self) -> Settings:
        """The runtime's settings."""
        return self.rt.settings

    @property
    def client(self) -> TestClient[Any]:
        """An HTTP test client over this runtime (its app runs no worker of its own)."""
        if self._client is None:
            self._client = TestClient(create_app(runtime=self.rt, run_worker=False))
            self._client.__enter__()
        return self._client

    @contextmanager
    def served(self) -> Iterator[str]:
        """The same app on a real local port (uvicorn in a thread) for the block; yields its base URL."""
        import uvicorn

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(runtime=self.rt, run_worker=False), port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.started, "the local server did not start within 20 s"
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)

    def stop(self) -> None:
        """Close the client, stop the worker, release the runtime."""
        if self._client is not None:
            self._client.__exit__(None, None, None)
        self.worker.stop()
        self.rt.close()

    def tenant(self, name: str = "acme") -> dict[str, Any]:
        """A new tenant; its credentials for every dialect."""
        with write_tx(self.rt.engine) as conn:
            return create_tenant(conn, name)

    def dataset(self, tenant: str, name: str = "contacts", schema: dict[str, Any] | None = None) -> None:
        """Define a dataset (the contacts schema unless given) for a tenant."""
        with write_tx(self.rt.engine) as conn:
            row = catalog.tenant_by_name(conn, tenant)
            assert row is not None
            catalog.put_dataset(conn, row.id, name, parse_schema(schema or CONTACTS_SCHEMA), now())

    def wait(self, ticket: int, timeout: float = 60.0, until: str = "terminal") -> ImportView:
        """Wait on the event log until the ticket is terminal (or settled, callbacks included)."""
        done = settled if until == "settled" else terminal
        return wait_for(self.rt, ticket, done, f"the ticket to be {until}", timeout)

    def batch_ticket(self, tenant: str, batch: str) -> int:
        """The ticket of an admin batch's upload."""
        with read_tx(self.rt.engine) as conn:
            t = catalog.tenant_by_name(conn, tenant)
            assert t is not None
            row = catalog.ticket_by_dedup(conn, t.id, f"batch:{batch}")
        assert row is not None, f"batch {batch} has no upload"
        return row.id

    def records(self, tenant: str, dataset: str = "contacts") -> dict[str, dict[str, Any]]:
        """A dataset's records by key (read straight from the database)."""
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
        """POST /imports with the file and these form fields (lists and dicts as JSON)."""
        with path.open("rb") as fh:
            return self.client.post(
                "/imports",
                data={k: (json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in fields.items()},
                files={"file": (path.name, fh, "application/octet-stream")},
                headers={"Authorization": f"Bearer {token}"},
            )


def native_auth(h: Harness, tenant: str = "acme") -> dict[str, str]:
    """A tenant with the contacts dataset; the native API's Authorization header."""
    creds = h.tenant(tenant)
    h.dataset(tenant)
    return {"Authorization": f"Bearer {creds['native']['token']}"}


def submit(h: Harness, auth: Mapping[str, str], path: Path, **fields: Any) -> int:
    """Upload a file to the contacts dataset through the native API; the accepted ticket."""
    resp = h.upload(auth["Authorization"].removeprefix("Bearer "), path, dataset="contacts", **fields)
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])
