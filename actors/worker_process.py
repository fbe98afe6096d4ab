"""The embedded worker in a child process: the API keeps an interpreter (and a GIL) of its own.

`importer serve` without Redis still needs no broker server: the API process forwards each
step message (actor name and ids, nothing else) over a pipe to one child process, which runs
the in-process broker and worker exactly as the embedded thread mode does. The log stays the
source of truth: a message lost with a dying child is re-driven by the next child's resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import dramatiq
import msgspec

from actors.logs import setup_logging
from actors.metrics import queue_depth
from actors.settings import Settings
from actors.worker import EmbeddedWorker

if TYPE_CHECKING:
    from actors.worker import MakeRuntime

logger = logging.getLogger("importer.worker")

RESTART_DELAY = 1.0  # seconds before a crashed child is replaced
START_TIMEOUT = 60.0  # seconds to wait for a new child to consume
NICE = 10  # the child runs at a lower priority than the API process
DEPTH_INTERVAL = 0.5  # seconds between the child's reports of its queue sizes


class ForwardBroker(dramatiq.Broker):
    """The API side's broker: `enqueue` hands the message to the worker child; it never consumes."""

    def __init__(self, supervisor: WorkerProcess) -> None:
        super().__init__(middleware=[])
        self.supervisor = supervisor
        self.declared: set[str] = set()

    def declare_queue(self, queue_name: str) -> None:
        self.declared.add(queue_name)

    def get_declared_queues(self) -> set[str]:
        return set(self.declared)

    def get_declared_delay_queues(self) -> set[str]:
        return set()

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        self.supervisor.forward(message.actor_name, tuple(message.args))
        return message

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> dramatiq.Consumer:
        raise NotImplementedError("the API process does not consume; its worker child does")

    def flush(self, queue_name: str) -> None:
        return None

    def flush_all(self) -> None:
        return None

    def join(self, queue_name: str, min_successes: int = 10, idle_time: int = 100, *, timeout: int | None = None) -> None:
        raise NotImplementedError("the queue lives in the worker child")


class WorkerProcess:
    """Starts the worker child, forwards messages to it, and replaces it if it dies.

    The child is a plain `python -m app.worker_child` (not multiprocessing, whose spawn start
    adds a resource-tracker process: 12 MB for nothing here). Two pipes join them: messages go
    down, and the child's reports ("ready", then its queue sizes) come up.
    """

    def __init__(self, settings: Settings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
        self.metrics_dir = tempfile.mkdtemp(prefix="importer-worker-metrics-")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._depth = (0, 0)  # the child's ready and delayed queue sizes, as last reported
        self.restarts = 0

    def queue_depth(self) -> dict[str, int]:
        """The child's broker backlog, as it last reported it (every DEPTH_INTERVAL)."""
        ready, delayed = self._depth
        return {"ready": ready, "delayed": delayed}

    @property
    def alive(self) -> bool:
        """The child runs and has reported that it consumes (a replacement is not alive until then)."""
        return self._ready.is_set() and self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the child (it resumes unfinished tickets itself) and watch it."""
        self._spawn()
        threading.Thread(target=self._watch, name="importer-worker-monitor", daemon=True).start()

    def _spawn(self) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        # The child's metrics go to files this process sums at scrape time (prometheus multiprocess).
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.worker_child", str(down_r), str(up_w), str(self.threads)],
                pass_fds=(down_r, up_w), env=env, close_fds=True,
            )
        finally:
            os.close(down_r)
            os.close(up_w)
        conn = Connection(down_w, readable=False)
        reports = Connection(up_r, writable=False)
        conn.send_bytes(msgspec.json.encode(self.settings))
        self._ready.clear()
        with self._lock:
            self._conn, self._proc = conn, proc
        threading.Thread(target=self._listen, args=(reports,), name="importer-worker-reports", daemon=True).start()
        # Serve only once steps can run: an upload right after start-up must not wait for the child.
        if self._ready.wait(START_TIMEOUT):
            logger.info("embedded worker process %d started", proc.pid)
        else:
            logger.error("embedded worker process %d did not report ready in %.0fs", proc.pid, START_TIMEOUT)

    def _listen(self, reports: Connection) -> None:
        with reports:
            while True:
                try:
                    item = reports.recv()
                except (EOFError, OSError):
                    return  # the child is gone; _watch replaces it
                if item == "ready":
                    self._ready.set()
                elif isinstance(item, tuple) and len(item) == 2:
                    self._depth = (int(item[0]), int(item[1]))

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            self._ready.clear()  # /ready answers 503 until the replacement reports ready
            if self._stopping.is_set():
                return
            logger.error("embedded worker process %d exited with code %s; starting another", proc.pid, code)
            self.restarts += 1
            self._depth = (0, 0)
            if self._stopping.wait(RESTART_DELAY):
                return
            self._spawn()

    def forward(self, actor: str, args: tuple[Any, ...]) -> None:
        """Send one message; if the child is gone, its successor's resume re-drives from the log."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                conn.send((actor, args))
            except (BrokenPipeError, EOFError, OSError) as exc:
                logger.warning("worker process unreachable (%s); the log will re-drive %s%s", exc, actor, args)

    def stop(self, timeout: float = 35.0) -> None:
        """Ask the child to finish its in-flight steps and exit; kill it past `timeout`."""
        self._stopping.set()
        with self._lock:
            conn, proc = self._conn, self._proc
            self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def child_main(
    settings: Settings, threads: int, conn: Connection, reports: Connection, make_runtime: MakeRuntime
) -> None:
    """The child: an in-process broker and worker, fed by the pipe until it closes."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    if NICE:
        os.nice(NICE)  # imports are background work: when both want a core, requests go first
    setup_logging(settings.log_format, settings.log_level)
    rt = make_runtime(settings)
    worker = EmbeddedWorker(rt, threads)
    done = threading.Event()
    send = threading.Lock()

    def _term(_signum: int, _frame: object) -> None:
        done.set()
        conn.close()  # unblocks recv()

    def _report() -> None:
        while not done.wait(DEPTH_INTERVAL):
            sizes = queue_depth(rt)
            with send, contextlib.suppress(OSError):
                reports.send((sizes["ready"], sizes["delayed"]))

    signal.signal(signal.SIGTERM, _term)
    worker.start()
    threading.Thread(target=_report, name="importer-queue-depth", daemon=True).start()
    with send:
        reports.send("ready")
    try:
        while not done.is_set():
            try:
                item = conn.recv()
            except (EOFError, OSError):
                break  # the API process is gone (or told us to stop)
            if item is None:
                break
            actor, args = item
            try:
                rt.actors[actor].send(*args)
            except Exception:
                logger.exception("could not enqueue %s%s", actor, args)
    finally:
        done.set()
        worker.stop()
        rt.close()
