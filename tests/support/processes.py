"""The importer in processes of its own: any `importer` command, and the serve launcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.tenants import create_tenant
from events import catalog
from events.datasets import parse_schema
from events.db import make_engine, write_tx
from events.log import now
from tests.support.files import CONTACTS_SCHEMA
from tests.support.servers import free_port

IMPORTER = [sys.executable, "-m", "app.cli"]


@contextmanager
def importer_process(
    args: list[str], env: dict[str, str], log: Path, *, graceful: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """`importer <args>` with its stderr in a file; at the end of the block terminated (then
    killed if it lingers), or killed at once when not graceful."""
    with log.open("wb") as err:
        proc = subprocess.Popen([*IMPORTER, *args], env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield proc
        finally:
            if graceful:
                proc.terminate()
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            else:
                proc.kill()
                proc.wait(10)


@contextmanager
def serving_importer(
    env: dict[str, str], log: Path, *, graceful: bool = True, timeout: float = 30.0
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`importer serve` on a free port in its own process; yields (url, process) once /health answers."""
    port = free_port()
    with importer_process(["serve", "--port", str(port)], env, log, graceful=graceful) as proc:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                "importer serve did not start:\n" + log.read_text(errors="replace")[-3000:]
            )
            time.sleep(0.1)
        yield url, proc


@contextmanager
def served(tmp: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, str]]]:
    """`importer serve` (embedded: SQLite + in-process worker) in its own process, with tenants
    'a' and 'b' (a contacts dataset each); yields (url, process, native tokens by tenant)."""
    data = tmp / "served"
    engine = make_engine(f"sqlite:///{data / 'importer.db'}")
    tokens = {}
    with write_tx(engine) as conn:
        for name in ("a", "b"):
            tokens[name] = create_tenant(conn, name)["native"]["token"]
            row = catalog.tenant_by_name(conn, name)
            assert row is not None
            catalog.put_dataset(conn, row.id, "contacts", parse_schema(CONTACTS_SCHEMA), now())
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
    env.update({"IMPORTER_DATA_DIR": str(data), "IMPORTER_LOG_FORMAT": "text"})
    env.update({f"IMPORTER_{k.upper()}": v for k, v in settings.items()})
    with serving_importer(env, tmp / "serve.log", graceful=False) as (url, proc):
        yield url, proc, tokens
