"""Watching a service from a thread: a probe whose failures reach the test, process-tree memory, /health."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import httpx
import psutil


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
    total = 0
    root = psutil.Process(pid)
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):  # a child that just ended
            total += proc.memory_info().rss
    return total


class ServiceSample:
    """The peak process-tree RSS of a served process and its /health latencies, sampled by a Watch."""

    def __init__(self, url: str, pid: int) -> None:
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
        """The slowest /health answer seen."""
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
