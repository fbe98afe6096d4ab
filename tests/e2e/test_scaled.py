"""The scaled topology for real: two `importer serve` and two `importer worker` processes on PostgreSQL + Redis."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.settings import load_settings
from app.wiring import make_runtime
from tests.support import (
    CONTACTS_SCHEMA,
    IMPORTER,
    check_exactly_once,
    contacts,
    free_port,
    importer_process,
    redis_url,
    write_csv,
)
from tests.support.object_store import S3Server, s3_env


def _until(what: str, check: object, timeout: float, logs: list[Path]) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()  # type: ignore[operator]
            if got:
                return got
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise AssertionError(f"{what} did not happen in {timeout}s\n{tails}")


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*IMPORTER, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_an_import_submitted_to_one_api_process_completes_and_shows_on_the_other(
    pg_schema_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
    env |= {
        "IMPORTER_DATABASE_URL": pg_schema_url, "IMPORTER_REDIS_URL": redis_url(), "IMPORTER_REDIS_NAMESPACE": redis_namespace,
        "IMPORTER_DATA_DIR": str(tmp_path / "shared"), "IMPORTER_LOG_FORMAT": "json", "IMPORTER_CHUNK_SIZE": "1000",
    }
    # The CLI creates the schema once, before four processes start (they would otherwise race to create it).
    token = json.loads(_cli(env, "tenants", "create", "acme", "--json"))["native"]["token"]
    schema = tmp_path / "contacts.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    _cli(env, "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema))
    operator = _cli(env, "ops", "token").strip()
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"{name}.log" for name in ("api-a", "api-b", "worker-1", "worker-2")]
    with ExitStack() as stack:
        for port, log in zip(ports, logs[:2], strict=True):
            stack.enter_context(importer_process(["serve", "--port", str(port)], env, log))
        for log in logs[2:]:
            stack.enter_context(importer_process(["worker", "--processes", "1", "--threads", "2"], env, log))
        a, b = (httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports)
        for api in (a, b):
            _until("API ready", lambda api=api: api.get("/ready").status_code == 200, 60, logs)
        auth = {"Authorization": f"Bearer {token}"}
        path = write_csv(tmp_path / "contacts.csv", contacts(5000))
        with path.open("rb") as fh:
            resp = a.post("/imports", data={"dataset": "contacts"}, files={"file": ("contacts.csv", fh)}, headers=auth)
        assert resp.status_code == 202, resp.text
        ticket = resp.json()["id"]

        streamed = []  # the other process streams the log as it grows, and ends after the terminal event
        with b.stream("GET", f"/ops/imports/{ticket}/events", headers={"Authorization": f"Bearer {operator}", "Accept": "text/event-stream"}) as stream:
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    streamed.append(int(line[4:]))
                elif line.startswith("event: "):
                    last = line[7:]
        assert streamed == list(range(1, len(streamed) + 1)) and last == "import_completed"

        def completed() -> dict[str, object] | None:
            body: dict[str, object] = b.get(f"/imports/{ticket}", headers=auth).json()
            return body if body["state"] in ("completed", "failed", "canceled") else None

        final = _until("completion seen on the other API process", completed, 120, logs)
        assert isinstance(final, dict) and final["state"] == "completed"
        assert final["rows"] == {
            "total": 5000, "processed": 5000, "created": 5000, "updated": 0, "unchanged": 0,
            "ignored": 0, "failed": 0, "skipped": 0, "rolled_back": 0,
        }
        assert a.get(f"/imports/{ticket}", headers=auth).content == b.get(f"/imports/{ticket}", headers=auth).content
        assert b.get("/datasets/contacts", headers=auth).json()["records"] == 5000
        metrics = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(a.get("/metrics").text) for s in f.samples
        }
        assert metrics[("importer_imports", (("dialect", "native"), ("state", "completed")))] == 1
        a.close()
        b.close()


@pytest.mark.slow
def test_two_hosts_sharing_no_disk_import_through_object_storage_and_survive_a_killed_worker(
    pg_schema_url: str, redis_namespace: str, s3_server: S3Server, tmp_path: Path
) -> None:
    """Every process has its own empty data dir; blobs live only in the (moto) S3 bucket. The upload
    lands on API a, the first worker parses and is SIGKILLed on its first chunk, the second (started
    then, on another empty disk) finishes from the log and the bucket, API b reports; every row is
    applied once."""
    bucket = s3_server.bucket()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORTER_", "AWS_"))}
    base |= s3_env(s3_server.url, bucket) | {
        "IMPORTER_DATABASE_URL": pg_schema_url, "IMPORTER_REDIS_URL": redis_url(), "IMPORTER_REDIS_NAMESPACE": redis_namespace,
        "IMPORTER_LOG_FORMAT": "json", "IMPORTER_CHUNK_SIZE": "500", "IMPORTER_STALL_SECONDS": "3",
        "IMPORTER_RESUME_INTERVAL_SECONDS": "1",
    }
    names = ("api-a", "api-b", "worker-1", "worker-2")
    dirs = {name: tmp_path / name for name in names}

    def env(name: str, **extra: str) -> dict[str, str]:
        return base | {"IMPORTER_DATA_DIR": str(dirs[name])} | extra

    token = json.loads(_cli(env("api-a"), "tenants", "create", "acme", "--json"))["native"]["token"]
    schema = tmp_path / "contacts.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    _cli(env("api-a"), "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema))
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"{name}.log" for name in names]
    with ExitStack() as stack:
        for name, port, log in zip(names[:2], ports, logs[:2], strict=False):
            stack.enter_context(importer_process(["serve", "--port", str(port)], env(name), log))
        doomed = stack.enter_context(importer_process(["worker", "--processes", "1", "--threads", "2"],
                                             env("worker-1", IMPORTER_FAULT="apply_chunk:*:before_commit:kill"), logs[2]))
        a, b = (httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports)
        for api in (a, b):
            _until("API ready", lambda api=api: api.get("/ready").status_code == 200, 60, logs)
        assert a.get("/ready").json()["checks"]["blobs"] == "ok"
        auth = {"Authorization": f"Bearer {token}"}
        rows = contacts(5000)
        path = write_csv(tmp_path / "contacts.csv", rows)
        with path.open("rb") as fh:
            resp = a.post("/imports", data={"dataset": "contacts"}, files={"file": ("contacts.csv", fh)}, headers=auth)
        assert resp.status_code == 202, resp.text
        ticket = resp.json()["id"]
        # The only worker at first: it parses, takes the first chunk and dies before committing it.
        assert doomed.wait(60) == -signal.SIGKILL
        stack.enter_context(importer_process(["worker", "--processes", "1", "--threads", "2"], env("worker-2"), logs[3]))

        def finished() -> dict[str, object] | None:
            body: dict[str, object] = b.get(f"/imports/{ticket}", headers=auth).json()
            return body if body["state"] in ("completed", "failed", "canceled") else None

        final = _until("completion seen on the other API process", finished, 180, logs)
        assert isinstance(final, dict) and final["state"] == "completed", final
        a.close()
        b.close()
    checker = make_runtime(load_settings(env={}, database_url=pg_schema_url, data_dir=str(tmp_path / "checker")))
    try:
        view = check_exactly_once(checker, ticket, rows)
    finally:
        checker.close()
    assert view.file is not None and view.file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert s3_server.keys(bucket) == [f"importer/{view.file.blob}"]  # the source; the chunks were removed
    for name, folder in dirs.items():  # nothing was ever stored on a host's own disk
        assert not (folder / "blobs").exists(), name
        assert not any((folder / "tmp").glob("*")), (name, list((folder / "tmp").glob("*")))
