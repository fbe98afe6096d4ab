"""`importer serve` on the embedded default runs its worker in a child process, and replaces it if it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support import CONTACTS_SCHEMA, IMPORTER, contacts, write_csv

Served = tuple[str, dict[str, str], subprocess.Popen[bytes]]


def _setup(env: dict[str, str], tmp_path: Path) -> str:
    """A tenant and the contacts dataset through the CLI; returns the native token."""
    made = subprocess.run([*IMPORTER, "tenants", "create", "acme", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    ds = subprocess.run(
        [*IMPORTER, "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert ds.returncode == 0, ds.stderr
    return str(json.loads(made.stdout)["native"]["token"])


def _workers(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> list[psutil.Process]:
    """The serve process's worker child (spawned multiprocessing children, not the resource tracker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            c for c in psutil.Process(proc.pid).children()
            if c.is_running() and "resource_tracker" not in " ".join(c.cmdline())
        ]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("serve has no worker child process")


def _wait(client: httpx.Client, ticket: int, until: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/imports/{ticket}").json()
        if until(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"ticket {ticket} never reached the awaited state; last: {body}")


def _submit(client: httpx.Client, path: Path) -> int:
    with path.open("rb") as fh:
        response = client.post("/imports", data={"dataset": "contacts"}, files={"file": (path.name, fh, "text/csv")})
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def test_the_worker_runs_in_a_child_without_pydantic_and_its_metrics_reach_the_api(served_process: Served, tmp_path: Path) -> None:
    """Given serve on the embedded default, an import runs in the worker child, which never maps
    pydantic's compiled core (the app's SQLModel rows stay in the API process), and the API serves
    the child's counts."""
    url, env, proc = served_process
    token = _setup(env, tmp_path)
    [child] = _workers(proc)
    assert child.pid != proc.pid
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        ticket = _submit(client, write_csv(tmp_path / "a.csv", contacts(1200)))
        done = _wait(client, ticket, lambda b: b["state"] in ("completed", "failed"))
        assert done["state"] == "completed" and done["rows"]["created"] == 1200
        ready = client.get("/ready").json()
        assert ready == {"status": "ok", "checks": {"database": "ok", "broker": "in-process", "blobs": "ok"}}
        metrics = client.get("/metrics").text
    created = [line for line in metrics.splitlines() if line.startswith('importer_rows_total{outcome="created"}')]
    assert len(created) == 1 and float(created[0].split()[-1]) == 1200.0  # counted by the child, served here
    ready_queue = [line for line in metrics.splitlines() if line.startswith('importer_queue_messages{kind="ready"}')]
    assert ready_queue == ['importer_queue_messages{kind="ready"} 0.0']  # the child's queue, drained
    assert any("pydantic_core" in m.path for m in psutil.Process(proc.pid).memory_maps())  # the API maps it: the check sees it
    assert [m.path for m in child.memory_maps() if "pydantic_core" in m.path] == []  # the child does not, after a whole import


def test_a_killed_worker_child_is_replaced_and_every_row_lands_once(served_process: Served, tmp_path: Path) -> None:
    url, env, proc = served_process
    token = _setup(env, tmp_path)
    [first] = _workers(proc)
    rows = 150_000
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        ticket = _submit(client, write_csv(tmp_path / "big.csv", contacts(rows)))
        _wait(client, ticket, lambda b: (b["rows"].get("processed") or 0) > 0 or b["state"] == "completed")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        [second] = _workers(proc)
        assert second.pid != first.pid
        done = _wait(client, ticket, lambda b: b["state"] in ("completed", "failed"))
        assert done["state"] == "completed"
        assert done["rows"]["created"] == rows and done["rows"]["failed"] == 0
        assert client.get("/ready").json()["status"] == "ok"
