"""A scaled deployment made of real processes: PostgreSQL + Redis + `importer worker`s, and Redis's queues."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actors.settings import Settings, load_settings
from app.service import start_import
from app.tenants import create_tenant
from app.uploads import UploadedFile
from app.wiring import make_runtime
from events import catalog
from events.datasets import parse_schema
from events.db import write_tx
from events.log import now
from events.types import ImportSpec
from tests.support.files import CONTACTS_SCHEMA, contacts, write_csv
from tests.support.processes import IMPORTER
from tests.support.servers import free_port


class WorkerProcess:
    """One `importer worker` process with its stderr in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._err = log.open("ab")
        self.proc = subprocess.Popen(
            [*IMPORTER, "worker", "--processes", "1", "--threads", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=self._err,
        )

    def problem(self) -> str | None:
        """None while it runs; else how it ended, with its log's tail."""
        code = self.proc.poll()
        return None if code is None else f"worker exited with {code}\n{self.tail()}"

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        self._err.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def wait_logged(self, text: str, timeout: float) -> None:
        """Wait until its log says `text` (or fail with the log's tail)."""
        deadline = time.monotonic() + timeout
        while text not in self.tail(1_000_000):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"the worker did not log {text!r} within {timeout}s\n{self.tail()}")
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        """Wait for it to end; its exit code (negative: the signal that ended it)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running after {timeout}s\n{self.tail()}") from None

    def stop(self) -> None:
        """SIGKILL it if still running (how a worker ends matters only to tests that say so)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._err.close()


class Scaled:
    """PostgreSQL + Redis + a shared data dir; the test submits, `importer worker` processes work."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str, namespace: str, **overrides: Any) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "shared"
        values: dict[str, Any] = {
            "database_url": database_url, "redis_url": redis_url, "redis_namespace": namespace,
            "data_dir": str(self.data_dir), "chunk_size": 200, "max_retries": 3,
            "retry_min_backoff_ms": 10, "retry_max_backoff_ms": 100, "allowed_hosts": "127.0.0.1",
            "log_format": "text",
        }
        values.update(overrides)
        self.values = values
        self.settings: Settings = load_settings(env={}, **values)
        self.rt = make_runtime(self.settings)  # creates the schema before any worker starts; never consumes
        self.workers: list[WorkerProcess] = []
        with write_tx(self.rt.engine) as conn:
            self.creds = create_tenant(conn, "acme")
            tenant = catalog.tenant_by_name(conn, "acme")
            assert tenant is not None
            catalog.put_dataset(conn, tenant.id, "contacts", parse_schema(CONTACTS_SCHEMA), now())
        self.tenant = tenant

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a worker process runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
        env.update({f"IMPORTER_{k.upper()}": str(v) for k, v in self.values.items()})
        env.update(extra)
        return env

    def worker(self, fault: str | None = None, **extra: str) -> WorkerProcess:
        """Start a worker (with an IMPORTER_FAULT rule when given)."""
        if fault:
            extra["IMPORTER_FAULT"] = fault
        w = WorkerProcess(self.env(**extra), self.tmp / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(w)
        return w

    def submit(self, n: int, **spec: Any) -> tuple[int, list[list[Any]]]:
        """Accept an upload of n contact rows, as the API would; returns (ticket, rows)."""
        rows = contacts(n)
        path = write_csv(self.tmp / f"upload-{time.monotonic_ns()}.csv", rows)
        upload = UploadedFile(path=path, filename=path.name, size=path.stat().st_size, sha256="0" * 64, content_type="text/csv")
        ticket, _ = start_import(self.rt, self.tenant, ImportSpec(dataset="contacts", **spec), upload=upload)
        return ticket, rows

    def close(self) -> None:
        """Stop every worker and release the database."""
        for w in self.workers:
            w.stop()
        self.rt.close()




def redis_client(url: str) -> Any:
    """A Redis client."""
    import redis

    return redis.Redis.from_url(url)


def requeue_unacked(url: str, namespace: str) -> list[tuple[str, list[Any]]]:
    """Put dead workers' unacknowledged messages back on their queues, as dramatiq does once a
    worker's heartbeat is 60 s old; returns them as (actor, args)."""
    client = redis_client(url)
    moved: list[tuple[str, list[Any]]] = []
    prefix = f"{namespace}:__acks__."
    try:
        for key in list(client.scan_iter(f"{prefix}*")):
            worker_id, _, queue = key.decode()[len(prefix) :].partition(".")
            for message_id in client.smembers(key):
                body = client.hget(f"{namespace}:{queue}.msgs", message_id)
                if body is not None:
                    message = json.loads(body)
                    moved.append((message["actor_name"], message["args"]))
                client.rpush(f"{namespace}:{queue}", message_id)
            client.delete(key)
            client.zrem(f"{namespace}:__heartbeats__", worker_id)
    finally:
        client.close()
    return moved


def pending_messages(url: str, namespace: str) -> int:
    """Messages queued, delayed or in flight (unacknowledged) in a namespace."""
    client = redis_client(url)
    count = 0
    try:
        for raw in client.scan_iter(f"{namespace}:*"):
            key = raw.decode()
            if key.endswith((".msgs", ".XQ")) or key.endswith("__heartbeats__"):
                continue
            kind = client.type(raw)
            count += client.llen(raw) if kind == b"list" else client.scard(raw) if kind == b"set" else 0
    finally:
        client.close()
    return count


def wait_drained(url: str, namespace: str, timeout: float = 30.0, alive: Callable[[], str | None] | None = None) -> None:
    """Wait until no message is queued, delayed or in flight: nothing will run again."""
    deadline = time.monotonic() + timeout
    while (left := pending_messages(url, namespace)) and time.monotonic() < deadline:
        if alive is not None and (problem := alive()) is not None:
            raise AssertionError(problem)
        time.sleep(0.1)
    assert left == 0, f"{left} message(s) still pending after {timeout}s"


class PrivateRedis:
    """A redis-server of our own (no persistence) that a test may kill and start again empty."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is needed on PATH (CI starts Redis from it too)"
        self.binary = binary
        self.port = free_port()
        self.dir = tmp / "redis"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (empty) and wait until it answers."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = redis_client(self.url)
                if client.ping():
                    client.close()
                    return
            except Exception:  # not listening yet
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL it: every queue's contents are gone."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.kill()



@contextmanager
def on_private_redis(tmp: Path, database_url: str, **overrides: Any) -> Iterator[tuple[PrivateRedis, Scaled]]:
    """A scaled deployment whose Redis the test owns (and may kill and start again empty)."""
    redis = PrivateRedis(tmp)
    cluster = Scaled(tmp, database_url, redis.url, "importer", **overrides)
    try:
        yield redis, cluster
    finally:
        cluster.close()
        redis.close()
