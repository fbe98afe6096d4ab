"""Running actors: an in-process worker (embedded default) or `importer worker` processes on Redis."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import dramatiq

from actors.logs import setup_logging
from actors.resume import Resumer, resume

if TYPE_CHECKING:
    from actors.runtime import Runtime
    from actors.settings import Settings

    MakeRuntime = Callable[[Settings], Runtime]

logger = logging.getLogger("importer.worker")


class EmbeddedWorker:
    """A dramatiq worker inside this process, plus the periodic re-drive."""

    def __init__(self, rt: Runtime, threads: int | None = None) -> None:
        self.rt = rt
        self.worker = dramatiq.Worker(rt.broker, worker_threads=threads or rt.settings.worker_threads, worker_timeout=rt.settings.worker_poll_ms)
        self.resumer = Resumer(rt)
        self._running = False

    def start(self) -> None:
        """Start consuming, then re-drive whatever the log shows unfinished."""
        # Chunks allocate hundreds of thousands of short-lived objects: with the default gen-0
        # threshold the collector rescans the whole (static) heap many times per chunk. Freeze the
        # start-up heap and collect young objects less often (bench: chunk decode 43 ms -> 18 ms).
        gc.freeze()
        gc.set_threshold(50_000, 20, 50)
        self.worker.start()
        self._running = True
        resume(self.rt)
        self.resumer.start()

    def stop(self) -> None:
        """Stop consuming; in-flight steps finish first (their effects are in the log)."""
        if not self._running:
            return
        self._running = False
        self.resumer.stop()
        self.worker.stop(timeout=30_000)


def run_worker_process(settings: Settings, threads: int, make_runtime: MakeRuntime) -> None:
    """Body of one worker process: consume until SIGTERM/SIGINT, then stop cleanly.

    `make_runtime` is the app's wiring (a module-level function, so a spawned child can unpickle it).
    """
    setup_logging(settings.log_format, settings.log_level)
    rt = make_runtime(settings)
    worker = EmbeddedWorker(rt, threads)
    done = threading.Event()
    stopping = threading.Lock()

    def _stop(signum: int, _frame: object) -> None:
        # A terminal's Ctrl-C (or `timeout`, or a service manager) signals the whole process
        # group and the parent forwards the signal as well: stop once, and say so once. A lock,
        # not done.is_set(): the second signal's handler may run inside the first one.
        if not stopping.acquire(blocking=False):
            return
        logger.info("worker %d received signal %d; stopping", os.getpid(), signum)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.start()
    logger.info("worker %d consuming (%d threads)", os.getpid(), threads)
    done.wait()
    worker.stop()
    rt.close()


def run_workers(settings: Settings, processes: int, threads: int, make_runtime: MakeRuntime) -> None:
    """Run `processes` worker processes (one runs in this process when processes == 1)."""
    if processes <= 1:
        run_worker_process(settings, threads, make_runtime)
        return
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=run_worker_process, args=(settings, threads, make_runtime), daemon=False) for _ in range(processes)]
    for child in children:
        child.start()

    def _forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
