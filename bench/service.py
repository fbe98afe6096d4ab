"""Drive the real service: `importer serve` (embedded) or serve + `importer worker` (scaled; blobs in a folder or an S3 server), on loopback.

Every process here is one the harness started (in its own session, so its whole tree can be
stopped by that id); RSS is sampled with psutil over each started process and its children.

Over 400 lines on purpose: it starts, watches and stops every process topology the bench measures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psutil

from bench import data

REPO = Path(__file__).resolve().parent.parent
TERMINAL = ("completed", "failed", "canceled")
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
}
MB = 1024 * 1024


def redis_url() -> str:
    """The Redis the scaled stage uses (the tests' variable, else the local server)."""
    return os.environ.get("BENCH_REDIS_URL") or os.environ.get("IMPORTER_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def postgres_url() -> str:
    """The PostgreSQL database the scaled stage and the COPY floor use (a fresh schema in it)."""
    return (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("IMPORTER_TEST_DATABASE_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq takes it."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def with_search_path(url: str, schema: str) -> str:
    """The URL with `options=-csearch_path=<schema>` added."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote('-csearch_path=' + schema, safe='')}"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RssSampler:
    """Sample the summed RSS of some process trees every `interval` seconds; keep the peak."""

    def __init__(self, roots: Callable[[], list[int]], interval: float = 0.05) -> None:
        self.roots = roots
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.per_process: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def sample(self) -> int:
        """Take one sample now; returns the summed RSS in bytes."""
        total = 0
        seen: set[int] = set()
        for pid in self.roots():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                name, peak = self.per_process.get(proc.pid, ("", 0))
                if not name:
                    name = _describe(proc)
                self.per_process[proc.pid] = (name, max(peak, rss))
        self.peak = max(self.peak, total)
        self.samples += 1
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def processes(self) -> list[dict[str, Any]]:
        """Each sampled process's peak RSS (MB)."""
        return [{"pid": pid, "process": name, "peak_rss_mb": round(peak / MB, 1)} for pid, (name, peak) in sorted(self.per_process.items())]


def _describe(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    if "-m" in cmd:
        i = cmd.index("-m")
        return " ".join(cmd[i + 1 : i + 4])
    if "-c" in cmd and any("multiprocessing" in c for c in cmd):
        return "worker child (spawn)"
    return " ".join(Path(c).name if n == 0 else c for n, c in enumerate(cmd[:3]))


def stop_tree(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Stop a process the harness started (and its session's processes): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the child leads its own session (start_new_session)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600.0) -> tuple[str, int, float]:
    """Run a command to its end, sampling its tree's RSS; returns (stdout, peak RSS, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    with RssSampler(lambda: [proc.pid]) as sampler:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_tree(proc, grace=2)
            raise RuntimeError(f"timed out after {timeout:.0f}s: {' '.join(cmd[:4])}") from None
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    return out.decode(), sampler.peak, wall


def parse_iso(text: str | None) -> float | None:
    """An ISO 8601 'Z' timestamp as epoch seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StatusProbe:
    """Clients issuing GET /imports/{id} at a fixed total rate; latency per request from its send."""

    def __init__(self, base: str, token: str, ticket: int, rate: float, threads: int = 8) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.path = f"/imports/{ticket}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rate = rate
        self.threads = threads
        self.latencies: list[float] = []
        self.late: list[float] = []  # how far behind schedule each request was sent
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)]
        self.started = 0.0
        self.ended = 0.0

    def _loop(self, n: int) -> None:
        # http.client on a kept-alive connection: a fraction of httpx's CPU per request, so the
        # client on this 2-core box takes as little as it can from the server it measures
        period = self.threads / self.rate
        due = self.started + n * (period / self.threads)
        lat: list[float] = []
        late: list[float] = []
        errors = 0
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while not self._stop.is_set():
            pause = due - time.perf_counter()
            if pause > 0 and self._stop.wait(pause):
                break
            sent = time.perf_counter()
            late.append(max(0.0, sent - due))
            try:
                conn.request("GET", self.path, headers=self.headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            lat.append(time.perf_counter() - sent)
            errors += not ok
            due += period
        conn.close()
        with self._lock:
            self.latencies.extend(lat)
            self.late.extend(late)
            self.errors += errors

    def __enter__(self) -> StatusProbe:
        self.started = time.perf_counter()
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=35)
        self.ended = time.perf_counter()

    def summary(self) -> dict[str, Any]:
        """p50/p99/max latency (ms), the rate achieved and the error count."""
        return latency_summary(self.latencies, self.ended - self.started, self.rate, self.errors)


def latency_summary(latencies: list[float], seconds: float, rate: float, errors: int) -> dict[str, Any]:
    """Percentiles (ms) of request latencies measured over `seconds` at a target `rate`."""
    lat = sorted(latencies)
    if not lat:
        return {"requests": 0, "errors": errors}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
    span = max(1e-9, seconds)
    return {
        "requests": len(lat),
        "errors": errors,
        "target_rate": rate,
        "achieved_rate": round(len(lat) / span, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p90_ms": round(q[89] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2),
        "seconds": round(span, 1),
    }


def phases(events: list[dict[str, Any]], sent: float, accepted: float) -> dict[str, Any]:
    """Where the time went, from the ticket's event log: queue+parse, apply (per chunk), finalize."""
    at: dict[str, float] = {}
    chunks: list[float] = []
    total_chunks = total_rows = None
    for e in events:
        t = parse_iso(e.get("at"))
        if t is None:
            continue
        kind = e.get("type", "")
        if kind == "chunk_applied":
            chunks.append(t)
        else:
            at.setdefault(kind, t)
        if kind == "file_parsed":
            total_chunks, total_rows = e.get("chunks"), e.get("total_rows")
    out: dict[str, Any] = {"upload_s": round(accepted - sent, 2)}
    parsed = at.get("file_parsed")
    if parsed is not None:
        out["stored_to_parsed_s"] = round(parsed - at.get("file_stored", accepted), 2)
        out["sent_to_parsed_s"] = round(parsed - sent, 2)
        out["total_chunks"], out["total_rows"] = total_chunks, total_rows
    if chunks and parsed is not None:
        start = min(parsed, at.get("chunks_staged", parsed))  # overlapping: chunks applied while the file is read
        out["chunks"] = len(chunks)
        out["apply_s"] = round(chunks[-1] - start, 2)
        out["applied_while_read"] = sum(t < parsed for t in chunks)
        gaps = [b - a for a, b in zip([start, *chunks], chunks, strict=False)]
        k = max(1, min(10, len(gaps) // 3))
        out["chunk_first_ms"] = round(1000 * sum(gaps[:k]) / k, 1)  # the first chunks' mean apply time
        out["chunk_last_ms"] = round(1000 * sum(gaps[-k:]) / k, 1)  # the last chunks' (growth = superlinear cost)
    end = at.get("import_completed") or at.get("import_failed") or at.get("import_canceled")
    if end is not None and chunks:
        out["finalize_s"] = round(end - chunks[-1], 2)
    return out


class Service:
    """One deployment of the real service in a fresh data dir, with a tenant and the bench dataset."""

    def __init__(
        self, workdir: Path, *, scaled: bool = False, processes: int = 2, log_dir: Path | None = None, s3: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.scaled = scaled
        self.s3_port = free_port() if s3 else 0  # blobs in a moto S3 server (a process, not sampled for RSS)
        self.s3_proc: subprocess.Popen[bytes] | None = None
        self.processes = processes
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir or workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""
        self.schema = ""
        self.namespace = ""
        self.env = {**self._env(), **(env or {})}  # `env`: settings of this deployment (IMPORTER_*), for A/B rows

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
        env.update(
            IMPORTER_DATA_DIR=str(self.workdir / "data"),
            IMPORTER_MAX_UPLOAD_BYTES=str(8 * 1024 * MB),
            IMPORTER_LOG_LEVEL="WARNING",
            IMPORTER_LOG_FORMAT="text",
            PYTHONUNBUFFERED="1",
        )
        if self.scaled:
            tag = uuid.uuid4().hex[:10]
            self.schema = f"bench_{tag}"
            self.namespace = f"importer-bench-{tag}"
            env["IMPORTER_REDIS_URL"] = redis_url()
            env["IMPORTER_REDIS_NAMESPACE"] = self.namespace
            env["IMPORTER_DATABASE_URL"] = with_search_path(postgres_url(), self.schema)
        if self.s3_port:
            env.update(
                IMPORTER_BLOB_URL="s3://bench/blobs", AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.s3_port}",
                AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
            )
        return env

    def _start_s3(self, timeout: float = 30.0) -> None:
        """moto's S3 server on loopback, with the bench bucket."""
        log = open(self.log_dir / "s3.log", "ab")  # noqa: SIM115 (closed with the process)
        self.s3_proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        url = f"http://127.0.0.1:{self.s3_port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.put(f"{url}/bench", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.s3_proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not start: {self.log_tail('s3')}") from None
                time.sleep(0.1)

    def _cli(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=self.env, capture_output=True, timeout=120
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"importer {args[0]} {args[1] if len(args) > 1 else ''} failed: {' | '.join(tail)}")
        return proc.stdout.decode()

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start(self) -> Service:
        """Create the schema (scaled), the tenant and the dataset, then start the processes."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.scaled:
            import psycopg

            with psycopg.connect(libpq_url(postgres_url()), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
        if self.s3_port:
            self._start_s3()
        creds = json.loads(self._cli("tenants", "create", "bench", "--json"))
        self.token = creds["native"]["token"]
        schema_file = data.write_schema(self.workdir / "schema.json")
        self._cli("datasets", "create", "bench", "--tenant", "bench", "--schema", str(schema_file))
        self._spawn("serve", "serve", "--host", "127.0.0.1", "--port", str(self.port))
        if self.scaled:
            self._spawn("worker", "worker", "--processes", str(self.processes))
        self._wait_ready()
        if self.scaled:
            self._wait_consuming()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} on start: {self.log_tail(name)}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not answer /health within {timeout:.0f}s")

    def _wait_consuming(self, timeout: float = 60.0) -> None:
        """Wait until every worker process consumes: each one's broker is in dramatiq's heartbeat set.

        Spawned worker processes start seconds after serve answers; an import uploaded before
        would bill their start-up to its parse (the embedded serve waits for its worker child).
        """
        import redis

        r = redis.Redis.from_url(redis_url())
        key = f"{self.namespace}:__heartbeats__"
        deadline = time.monotonic() + timeout
        try:
            while r.zcard(key) < self.processes:
                worker = self.procs["worker"]
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited with {worker.returncode} on start: {self.log_tail('worker')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.processes} worker processes did not all consume within {timeout:.0f}s")
                time.sleep(0.1)
        finally:
            r.close()

    def log_tail(self, name: str, lines: int = 3) -> str:
        """The last lines a process logged."""
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The started processes (their children are sampled too)."""
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def stop(self, grace: float = 5.0) -> None:
        """Stop the processes (a cut import is not waited for); drop the schema and Redis keys of a scaled run."""
        for proc in [*self.procs.values(), *([self.s3_proc] if self.s3_proc else [])]:
            with contextlib.suppress(Exception):
                stop_tree(proc, grace)
        if self.scaled:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(libpq_url(postgres_url()), autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            with contextlib.suppress(Exception):
                import redis

                r = redis.Redis.from_url(redis_url())
                keys = list(r.scan_iter(match=f"{self.namespace}*", count=1000))
                for start in range(0, len(keys), 500):
                    r.delete(*keys[start : start + 500])
                r.close()

    def __enter__(self) -> Service:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def _sampling(self) -> Iterator[RssSampler]:
        with RssSampler(self.pids) as sampler:
            yield sampler

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client for this service, with the tenant's token."""
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout)

    def upload(self, client: httpx.Client, path: Path, policy: str, dataset: str = "bench") -> tuple[int, float, float]:
        """POST the file (streamed); returns (ticket, time the first byte was sent, time accepted)."""
        ctype = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        with open(path, "rb") as fh:
            sent = time.time()
            r = client.post("/imports", data={"dataset": dataset, "policy": policy}, files={"file": (path.name, fh, ctype)})
        accepted = time.time()
        if r.status_code != 202:
            raise RuntimeError(f"POST /imports answered {r.status_code}: {r.text[:300]}")
        return int(r.json()["id"]), sent, accepted

    def status(self, client: httpx.Client, ticket: int) -> dict[str, Any]:
        """GET /imports/{ticket}, after checking that every started process still runs."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} died ({proc.returncode}) during the import: {self.log_tail(name)}")
        body: dict[str, Any] = client.get(f"/imports/{ticket}").json()
        return body

    def _events(self, client: httpx.Client, ticket: int) -> list[dict[str, Any]]:
        try:
            events: list[dict[str, Any]] = client.get(f"/imports/{ticket}/events").json()["events"]
            return events
        except Exception:
            return []

    def run_import(
        self, path: Path, *, policy: str = "partial", expect_rows: int | None = None, cap: float = 600.0,
        finalize_grace: float = 45.0,
    ) -> dict[str, Any]:
        """Upload `path` and wait for the terminal state: wall time from the first byte sent to the terminal event.

        An import still running after `cap` seconds is cut: it is canceled and its rate is taken
        from the rows processed so far (a lower bound, since the rows are parsed before any applies).
        """
        idle_rss = RssSampler(self.pids).sample()
        result: dict[str, Any] = {"idle_rss_mb": round(idle_rss / MB, 1)}
        with self._sampling() as sampler, self.client(timeout=max(60.0, cap)) as client:
            ticket, sent, accepted = self.upload(client, path, policy)
            deadline = sent + cap
            body = self.status(client, ticket)
            while body.get("state") not in TERMINAL:
                if time.time() >= deadline:
                    counts = body.get("rows") or {}
                    finishing = counts.get("total") and (counts.get("processed") or 0) >= counts["total"]
                    if not finishing or time.time() >= deadline + finalize_grace:
                        break  # cut, unless only the finalize step is left (it gets some grace)
                time.sleep(0.1)
                body = self.status(client, ticket)
            seen = time.time()
            cut = body.get("state") not in TERMINAL
            if cut:
                client.post(f"/imports/{ticket}/cancel")
            result["phases"] = phases(self._events(client, ticket), sent, accepted)
        rows = body.get("rows") or {}
        processed = int(rows.get("processed") or 0)
        result.update(
            ticket=ticket, state=body.get("state"), upload_seconds=round(accepted - sent, 3), counts=rows,
            peak_rss=sampler.peak, processes=sampler.processes(), rss_samples=sampler.samples,
        )
        if cut:
            elapsed = seen - sent
            total = expect_rows or int(rows.get("total") or 0)
            ph = result["phases"]
            result.update(cut=True, applied=processed, elapsed=round(elapsed, 2), rate_max=total / elapsed)
            if processed and ph.get("chunks") and ph.get("total_chunks"):
                # parse time as measured + the mean apply time of the chunks so far for every chunk
                estimate = ph["sent_to_parsed_s"] + ph["apply_s"] / ph["chunks"] * ph["total_chunks"]
                result.update(rows=total, seconds=max(estimate, elapsed), estimated=True)
                result["note"] = (
                    f"CUT at {elapsed:.0f}s (time budget) with {processed:,} of {total:,} rows applied: time "
                    "ESTIMATED as parse time + mean chunk time x chunks"
                    + (" (the finalize step had not ended: an upper bound)" if processed >= total else "")
                )
            else:
                result["note"] = f"CUT at {elapsed:.0f}s (time budget) before any row was applied: rate < {total / elapsed:,.0f} rows/s"
            return result
        finished = parse_iso(body.get("finished_at")) or seen
        result.update(rows=processed, seconds=max(1e-6, finished - sent))
        if body["state"] != "completed":
            raise RuntimeError(f"import ended {body['state']}: {body.get('error')}")
        if expect_rows is not None and rows.get("created") != expect_rows:
            result["note"] = f"created {rows.get('created')} of {expect_rows} rows (failed {rows.get('failed')})"
        return result

    def probe_status(self, path: Path, *, rate: float, window: float, cap: float) -> dict[str, Any]:
        """GET /imports/{id} at `rate` per second during an import: `window` s while the file is parsed,
        then `window` s once rows are being applied; the import is canceled after that."""
        out: dict[str, Any] = {}
        everything: list[float] = []
        errors = 0
        span = 0.0
        with self.client() as client:
            ticket, sent, accepted = self.upload(client, path, "partial")
            deadline = sent + cap
            for phase in ("parse", "apply"):
                body = self.status(client, ticket)
                if phase == "apply":
                    while int((body.get("rows") or {}).get("processed") or 0) == 0 and body.get("state") not in TERMINAL:
                        if time.time() > deadline - window:
                            break
                        time.sleep(0.2)
                        body = self.status(client, ticket)
                if body.get("state") in TERMINAL or time.time() > deadline - window:
                    out[phase] = {"skipped": f"import {body.get('state')}, {(body.get('rows') or {}).get('processed')} rows applied"}
                    continue
                with StatusProbe(self.base, self.token, ticket, rate) as probe:
                    time.sleep(window)
                after = self.status(client, ticket)
                out[phase] = {
                    **probe.summary(),
                    "applied_before": int((body.get("rows") or {}).get("processed") or 0),
                    "applied_after": int((after.get("rows") or {}).get("processed") or 0),
                    "state_after": after.get("state"),
                }
                everything.extend(probe.latencies)
                errors += probe.errors
                span += probe.ended - probe.started
            body = self.status(client, ticket)
            if body.get("state") not in TERMINAL:
                client.post(f"/imports/{ticket}/cancel")
        out["all"] = latency_summary(everything, span, rate, errors)
        out["upload_seconds"] = round(accepted - sent, 3)
        return out
