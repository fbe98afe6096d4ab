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

from actors.settings import load_settings
from actors.worker_process import RESTART_DELAY
from app.wiring import make_runtime
from tests.support import (
    CONTACTS_SCHEMA,
    IMPORTER,
    check_exactly_once,
    check_log,
    contacts,
    served,
    wait_for,
    write_csv,
)

Served = tuple[str, dict[str, str], subprocess.Popen[bytes]]
RESTART_LIMIT = 10.0  # docs/reliability.md: replaced after RESTART_DELAY (1 s) plus start-up; room for a loaded 2-core box


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


def test_a_killed_worker_child_is_replaced_and_every_row_lands_once(tmp_path: Path) -> None:
    """SIGKILL the child once the first chunk is applied: /ready answers 503 until a replacement
    consumes, which takes about RESTART_DELAY plus its start-up, and every row lands once."""
    rows = contacts(60_000)
    with served(tmp_path, chunk_size="1000") as (url, proc, tokens):
        rt = make_runtime(load_settings(env={}, data_dir=str(tmp_path / "served")))
        auth = {"Authorization": f"Bearer {tokens['a']}"}
        try:
            with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                [first] = _workers(proc)
                assert client.get("/ready").status_code == 200
                ticket = _submit(client, write_csv(tmp_path / "big.csv", rows))
                wait_for(rt, ticket, lambda v: v.chunks_applied >= 1, "the first chunk", timeout=120)
                os.kill(first.pid, signal.SIGKILL)
                killed = time.monotonic()
                first.wait(10)
                # No step runs while no child does (the API only forwards): this is the log at the kill.
                at_kill = check_log(rt, ticket)
                assert not at_kill.terminal and 1 <= at_kill.chunks_applied < 60, at_kill
                answers = [client.get("/ready")]
                while answers[-1].status_code != 200 and time.monotonic() - killed < RESTART_LIMIT:
                    time.sleep(0.02)
                    answers.append(client.get("/ready"))
                restarted = time.monotonic() - killed
                assert answers[0].status_code == 503, answers[0].text
                assert "worker process is not running" in answers[0].json()["checks"]["broker"]
                assert answers[-1].status_code == 200, f"no worker child consumed {restarted:.1f}s after the kill"
                assert restarted > RESTART_DELAY
                [second] = _workers(proc)
                assert second.pid != first.pid
                view = wait_for(rt, ticket, lambda v: v.terminal, "the import to finish", timeout=180)
                done = client.get(f"/imports/{ticket}").json()
            check_exactly_once(rt, ticket, rows)  # processed == created == rows, each record once, with its values
        finally:
            rt.close()
    assert (view.processed, view.created, view.updated, view.unchanged, view.failed) == (60_000, 60_000, 0, 0, 0)
    assert done["state"] == "completed"
    assert {k: done["rows"][k] for k in ("processed", "created", "updated", "unchanged", "failed")} == {
        "processed": 60_000, "created": 60_000, "updated": 0, "unchanged": 0, "failed": 0,
    }
