"""Fault-suite helpers: a scaled deployment made of real processes, log checks, local servers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from actors.runtime import Runtime
from app.service import start_import
from app.settings import Settings, load_settings
from app.tenants import create_tenant
from app.uploads import UploadedFile
from events import catalog
from events import log as event_log
from events.datasets import parse_schema
from events.db import read_tx, write_tx
from events.log import now
from events.projections import ImportView, apply
from events.types import TERMINAL_TYPES, ChunkApplied, ImportSpec, event_type
from tests.support import CONTACTS_SCHEMA, contacts, write_csv

IMPORTER = [sys.executable, "-m", "app.cli"]
RANK = {"accepted": 0, "processing": 1, "completed": 2, "failed": 2, "canceled": 2}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the log's invariants


def events_of(rt: Runtime, ticket: int) -> list[Any]:
    """The ticket's events, in order."""
    with read_tx(rt.engine) as conn:
        return [s.event for s in event_log.read(conn, ticket)]


def types_of(rt: Runtime, ticket: int) -> list[str]:
    """The ticket's event tags, in order."""
    return [event_type(e) for e in events_of(rt, ticket)]


def check_log(rt: Runtime, ticket: int) -> ImportView:
    """What every log must satisfy at any moment; returns its view.

    seqs run 1..n; the state only moves forward; at most one terminal event; each chunk is
    applied once, in order, and the chunks' rows follow each other with no gap or overlap.
    """
    with read_tx(rt.engine) as conn:
        stored = event_log.read(conn, ticket)
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1)), "seqs have gaps"
    view = ImportView(ticket=ticket)
    rank = 0
    terminal = 0
    next_chunk = next_row = 0
    for item in stored:
        before = view.state
        view = apply(view, item.event)
        assert RANK[view.state] >= rank, f"state moved back from {before} to {view.state}"
        assert not (RANK[before] == 2 and view.state != before), f"terminal state {before} changed"
        rank = RANK[view.state]
        if event_type(item.event) in TERMINAL_TYPES:
            terminal += 1
        if isinstance(item.event, ChunkApplied):
            assert item.event.chunk == next_chunk, f"chunk {item.event.chunk} applied, expected {next_chunk}"
            assert item.event.first == next_row, f"chunk {item.event.chunk} starts at {item.event.first}"
            next_chunk += 1
            next_row += sum(n for _, n in item.event.runs)
    assert terminal <= 1, f"{terminal} terminal events"
    return msgspec.structs.replace(view, seq=len(stored))


def ticket_records(rt: Runtime, ticket: int) -> dict[str, dict[str, Any]]:
    """Records last written by this ticket, by key."""
    with read_tx(rt.engine) as conn:
        rows = conn.execute(sa.text("SELECT key, data FROM records WHERE ticket = :t"), {"t": ticket})
        return {key: json.loads(data) for key, data in rows}


def staged_count(rt: Runtime, ticket: int) -> int:
    """Rows an atomic import holds in staging."""
    with read_tx(rt.engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM staged WHERE ticket = :t"), {"t": ticket}).scalar() or 0)


def expected_record(row: list[Any]) -> dict[str, Any]:
    """The record a `contacts()` row becomes."""
    email, name, age, balance, active, joined = row
    return {"email": email, "name": name, "age": int(age), "balance": balance, "active": active == "true", "joined": joined}


def check_exactly_once(rt: Runtime, ticket: int, rows: list[list[Any]]) -> ImportView:
    """The import completed and every data row (rows[1:]) landed once, with its values."""
    view = check_log(rt, ticket)
    data = rows[1:]
    assert view.state == "completed", (view.state, view.reason)
    assert (view.total_rows, view.created, view.processed, view.failed) == (len(data), len(data), len(data), 0)
    assert view.parsed is not None and view.chunks_applied == view.parsed.chunks
    got = ticket_records(rt, ticket)
    assert len(got) == len(data)
    for row in data:
        assert got[json.dumps([row[0]], separators=(",", ":"))] == expected_record(row)
    assert staged_count(rt, ticket) == 0
    return view


# ---------------------------------------------------------------- waiting on the log


def wait_for(
    rt: Runtime,
    ticket: int,
    done: Callable[[ImportView], bool],
    what: str,
    timeout: float = 60.0,
    alive: Callable[[], str | None] | None = None,
) -> ImportView:
    """Poll the ticket's log until `done(view)`; fail early if `alive()` reports a dead process."""
    deadline = time.monotonic() + timeout
    view = None
    while time.monotonic() < deadline:
        view = rt.view(ticket)
        if view is not None and done(view):
            return view
        if alive is not None and (problem := alive()) is not None:
            raise AssertionError(f"waiting for {what}: {problem}; last view: {view}")
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s; last view: {view}")


def settled(view: ImportView) -> bool:
    """Terminal, and its callback (if any) delivered or abandoned."""
    if not view.terminal:
        return False
    if view.spec is None or not view.spec.callback_url:
        return True
    return view.webhook.delivered_at is not None or view.webhook.abandoned


# ---------------------------------------------------------------- a scaled deployment


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
        self.rt = Runtime(self.settings)  # creates the schema before any worker starts; never consumes
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


# ---------------------------------------------------------------- watching a service from a thread


class Watch:
    """Run `probe()` over and over in a thread while the block runs. The first exception it raises
    stops it and is raised again in the test when the block ends (an assert failing in a thread
    would otherwise only warn), as is a probe that never ran."""

    def __init__(self, probe: Callable[[], None], every: float = 0.0) -> None:
        self.probe = probe
        self.every = every
        self.runs = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
            except BaseException as exc:  # noqa: BLE001 - carried back to the test
                self.error = exc
                return
            self.runs += 1
            self._stop.wait(self.every)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the watch's probe did not return within 30 s"
        if kind is None:
            if self.error is not None:
                raise AssertionError(f"the watch failed: {self.error!r}") from self.error
            assert self.runs > 0, "the watch never completed a probe"


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (serve's worker is a child), in bytes."""
    import psutil

    total = 0
    root = psutil.Process(pid)
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):  # a child that just ended
            total += proc.memory_info().rss
    return total


class ServiceSample:
    """The peak process-tree RSS of a served process and its /health latencies, sampled by a Watch."""

    def __init__(self, url: str, pid: int) -> None:
        import httpx

        self.pid = pid
        self.client = httpx.Client(base_url=url, timeout=30)
        self.client.get("/health")  # connected before sampling: latencies are the service's, not a handshake's
        self.idle = self.peak = tree_rss(pid)
        self.latencies: list[float] = []

    def __call__(self) -> None:
        self.peak = max(self.peak, tree_rss(self.pid))
        start = time.monotonic()
        resp = self.client.get("/health")
        self.latencies.append(time.monotonic() - start)
        assert resp.status_code == 200, resp.text

    def watch(self, every: float = 0.02, at_least: int = 10) -> Watch:
        """A Watch sampling this service; its block lasts until `at_least` samples are taken."""
        return _Sampling(self, every, at_least)

    @property
    def slowest(self) -> float:
        return max(self.latencies)


class _Sampling(Watch):
    """A Watch over a ServiceSample that, on leaving the block, waits for enough samples (10 s at most)."""

    def __init__(self, sample: ServiceSample, every: float, at_least: int) -> None:
        super().__init__(sample, every)
        self.sample = sample
        self.at_least = at_least

    def __exit__(self, kind: object, *rest: object) -> None:
        deadline = time.monotonic() + 10
        while len(self.sample.latencies) < self.at_least and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        super().__exit__(kind, *rest)


# ---------------------------------------------------------------- Redis


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


# ---------------------------------------------------------------- a webhook receiver


class Receiver(ThreadingHTTPServer):
    """Records every POST it gets and answers 204."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.hold: threading.Event | None = None  # when set by a test: answer only once it is released

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.posts.append((self.path, dict(self.headers.items()), body))
        if self.server.hold is not None:
            self.server.hold.wait(3)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A running webhook receiver."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- hostile files


NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RELNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def sheet_xml(rows: str, dimension: str = "A1:C2") -> str:
    """A worksheet part holding these <row> elements."""
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}><dimension ref="{dimension}"/>'
            f"<sheetData>{rows}</sheetData></worksheet>")


def inline_row(number: int, *cells: str) -> str:
    """A <row> of inline-string cells."""
    body = "".join(f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{v}</t></is></c>' for i, v in enumerate(cells))
    return f'<row r="{number}">{body}</row>'


def hand_xlsx(path: Path, sheet: str, *, strings: str | None = None, workbook: str | None = None) -> Path:
    """A minimal workbook written part by part (so any part can be made hostile)."""
    import zipfile

    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>']
    if strings is not None:
        rels.append(f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>')
    files = {
        "_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": workbook
        or f'<workbook {NS} {RELNS}><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(rels) + "</Relationships>",
        "xl/worksheets/sheet1.xml": sheet,
    }
    if strings is not None:
        files["xl/sharedStrings.xml"] = strings
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def lie_about_size(path: Path, part: str, declared: int) -> Path:
    """Rewrite a zip so a part declares `declared` unpacked bytes (local header and directory)."""
    import struct
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(part)
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(info.filename)] != info.filename.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))
    return path


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file (v3, 512-byte sectors) holding these streams (each >= 4 KiB)."""
    import struct

    free, end, fat_sector, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    bodies = [data.ljust(max(4096, -(-len(data) // 512) * 512), b"\0") for data in streams.values()]
    fat = [fat_sector, end]
    starts = []
    for body in bodies:
        starts.append(len(fat))
        sectors = len(body) // 512
        fat += [len(fat) + i + 1 for i in range(sectors - 1)] + [end]
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (raw.ljust(64, b"\0") + struct.pack("<HBBIII", len(raw), kind, 1, nostream, right, child)
                + b"\0" * 36 + struct.pack("<II", start, size) + b"\0" * 4)

    names = list(streams)
    entries = [entry("Root Entry", 5, nostream, 1, end, 0)]
    for i, name in enumerate(names):
        entries.append(entry(name, 2, i + 2 if i + 1 < len(names) else nostream, nostream, starts[i], len(bodies[i])))
    directory = b"".join(entries).ljust(512, b"\0")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    return header + struct.pack("<128I", *fat) + directory + b"".join(bodies)


@contextmanager
def serving_importer(env: dict[str, str], log: Path, timeout: float = 30.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`importer serve` on a free port in its own process; yields (url, process) once /health answers."""
    import httpx

    port = free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen([*IMPORTER, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=err)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.1)
            yield url, proc
        finally:
            proc.kill()
            proc.wait(10)


@contextmanager
def served(tmp: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, str]]]:
    """`importer serve` (embedded: SQLite + in-process worker) in its own process, with tenants
    'a' and 'b' (a contacts dataset each); yields (url, process, native tokens by tenant)."""
    from events.db import make_engine

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
    with serving_importer(env, tmp / "serve.log") as (url, proc):
        yield url, proc, tokens
