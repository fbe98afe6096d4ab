"""Check ahead: while a worker applies chunk k of an import, a lean child process checks chunk k+1.

Applying a chunk is validation (pure CPU, independent of the database) and then the decision and
the write (under the dataset's lock). One Python process runs one of them at a time, so the row
checks of the next chunk go to a child process (actors.check_child): its own core, not the
worker's. Nothing here is state: a check that is missing, failed or slow is done again in the
worker, and the outcome is the same row for row (the same `checks.check_rows` runs either way).
The child imports only msgspec and the row checks (about 17 MB), not the database or the web stack.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

import msgspec

from actors.blobs import Blobs
from actors.check_child import read_frame, write_frame
from actors.checks import CheckedChunk, checked_key, decode_checked, join_checked

logger = logging.getLogger("importer.check_ahead")

Key = tuple[str, int, bytes, tuple[str, ...]]  # (ticket uuid, chunk, schema JSON, columns): what a check depends on
_KEEP = 4  # checks held at most: a worker applies one chunk at a time, so more are ones nobody took
_WAIT_SECONDS = 60.0  # a check started already is nearly always sooner done than done again


class _Child:
    """The child process, a thread writing its requests and one reading its answers."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors.check_child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.pending: dict[int, Future[list[bytes]]] = {}
        self.lock = threading.Lock()
        self.outbox: queue.SimpleQueue[tuple[int, Callable[[], bytes]] | None] = queue.SimpleQueue()
        self.alive = True
        threading.Thread(target=self._write, name="check-ahead-writer", daemon=True).start()
        threading.Thread(target=self._read, name="check-ahead-reader", daemon=True).start()

    def submit(self, seq: int, request: Callable[[], bytes]) -> Future[list[bytes]]:
        """Queue a request (made in the writer thread: reading the chunk may wait on object storage)."""
        future: Future[list[bytes]] = Future()
        with self.lock:
            if not self.alive:
                raise RuntimeError("the check-ahead child has ended")
            self.pending[seq] = future
        self.outbox.put((seq, request))
        return future

    def close(self) -> None:
        self.outbox.put(None)

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while (item := self.outbox.get()) is not None:
                seq, request = item
                try:
                    body = request()
                except Exception as exc:  # the chunk could not be read: that check fails, the next may not
                    self._fail(seq, exc)
                    continue
                write_frame(stdin, body)
        except OSError:
            pass  # the child is gone: the reader fails what is pending
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _fail(self, seq: int, exc: Exception) -> None:
        with self.lock:
            future = self.pending.pop(seq, None)
        if future is not None:
            future.set_exception(exc)

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while (frame := read_frame(stdout)) is not None:
                seq, ok, payload = msgspec.msgpack.decode(frame)
                with self.lock:
                    future = self.pending.pop(seq, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(RuntimeError(payload))
        finally:
            with self.lock:
                self.alive = False
                pending, self.pending = self.pending, {}
            for future in pending.values():
                future.set_exception(RuntimeError("the check-ahead child ended"))
            self.proc.wait()


class CheckAhead:
    """One worker process's child for checking chunks ahead of their apply (started on first use).

    With several worker processes (scaled), the next chunk may be applied by another one: then a
    finished check is also stored beside the parsed chunk (`share`), where any worker finds it.
    """

    def __init__(self, enabled: bool, share: Blobs | None = None) -> None:
        self.enabled = enabled
        self.share = share
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._seq = 0
        self._started: OrderedDict[Key, Future[list[bytes]]] = OrderedDict()
        self.taken = 0  # chunks the worker took checked from the child (for tests and the curious)

    def start(self, key: Key, parsed: Callable[[], bytes]) -> None:
        """Begin checking a parsed chunk in the child (`parsed` reads its stored bytes); `take` collects it."""
        if not self.enabled:
            return
        with self._lock:
            if key in self._started:
                return
            self._seq += 1
            seq, (_, _, schema_json, columns) = self._seq, key

            def request() -> bytes:
                return msgspec.msgpack.encode([seq, parsed(), schema_json, columns])

            try:
                if self._child is None or not self._child.alive:
                    self._child = _Child()
                future = self._child.submit(seq, request)
                if self.share is not None:
                    future.add_done_callback(partial(_store, self.share, key))
                self._started[key] = future
            except (OSError, RuntimeError) as exc:  # no child now: the worker checks itself
                logger.warning("cannot check ahead (%s); chunks are checked in the worker", exc)
                return
            while len(self._started) > _KEEP:
                self._started.popitem(last=False)

    def take(self, key: Key) -> CheckedChunk | None:
        """The checked chunk if a check of it was started here (waiting for it to finish) or stored
        by another worker, else None."""
        if not self.enabled:
            return None
        with self._lock:
            future = self._started.pop(key, None)
        if future is None:
            return self._shared(key)
        try:
            checked = _joined(future.result(timeout=_WAIT_SECONDS))
        except Exception as exc:  # a broken or slow child: the worker checks the chunk itself
            logger.warning("check ahead of chunk %d failed (%s: %s); checking it in the worker", key[1], type(exc).__name__, exc)
            return None
        self.taken += 1
        return checked

    def _shared(self, key: Key) -> CheckedChunk | None:
        if self.share is None:
            return None
        try:
            checked = _joined(msgspec.msgpack.decode(self.share.read_bytes(checked_key(*key)), type=list[bytes]))
        except FileNotFoundError:
            return None
        except Exception as exc:  # the store is away or the blob is bad: the worker checks the chunk itself
            logger.warning("stored check of chunk %d unusable (%s: %s)", key[1], type(exc).__name__, exc)
            return None
        self.taken += 1
        return checked

    def rest(self) -> None:
        """An import took its last chunk: let the child end unless another import's check is under way.

        A child between imports would be memory kept for nothing; the next import starts a new one.
        """
        with self._lock:
            for key in [k for k, f in self._started.items() if f.done()]:  # checks another worker took from the store
                del self._started[key]
            if not self._started:
                self._end_child()

    def close(self) -> None:
        """Let the child end (it exits when its stdin closes)."""
        with self._lock:
            self._started.clear()
            self._end_child()

    def _end_child(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None


def _store(share: Blobs, key: Key, future: Future[list[bytes]]) -> None:
    """A finished check, stored for whichever worker applies the chunk (in the child's reader thread)."""
    if future.cancelled() or future.exception() is not None:
        return
    try:  # the slices as the child sent them: whoever takes it decodes them as `take` does
        share.write_bytes(checked_key(*key), msgspec.msgpack.encode(future.result()))
    except Exception as exc:  # only a lost speed-up: that worker checks the chunk itself
        logger.warning("could not store the check of chunk %d (%s: %s)", key[1], type(exc).__name__, exc)


def _joined(pieces: list[bytes]) -> CheckedChunk:
    """A checked chunk from the serialised slices the child sent."""
    return join_checked([decode_checked(piece) for piece in pieces])
