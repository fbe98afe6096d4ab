"""Object-store test helpers: moto's standalone S3 server as a real process, and a proxy in front of
it that a test can cut (the store "stops" for the service while the server keeps its objects)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.support.servers import free_port


class S3Server:
    """`python -m moto.server` on a free 127.0.0.1 port (objects in its memory)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.log = tmp / "moto.log"
        self._err = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._err, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str | None = None) -> str:
        """Create a bucket (moto takes unsigned requests); returns its name."""
        name = name or f"b-{uuid.uuid4().hex[:12]}"
        resp = httpx.put(f"{self.url}/{name}", timeout=10)
        assert resp.status_code == 200, resp.text
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every visible object key under a prefix (an unfinished multipart upload is not one)."""
        resp = httpx.get(f"{self.url}/{bucket}", params={"list-type": "2", "prefix": prefix}, timeout=10)
        assert resp.status_code == 200, resp.text
        return re.findall(r"<Key>([^<]+)</Key>", resp.text)

    def close(self) -> None:
        """Stop the server."""
        self.proc.kill()
        self.proc.wait(10)
        self._err.close()


class CutProxy:
    """A TCP proxy to `upstream` that can be cut: then every open connection is reset and new ones
    are refused, as if the server had stopped, until `restore()`."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.lock = threading.Lock()
        self.sent = 0  # bytes from clients to the server since the last arm()
        self.limit: int | None = None
        self.cut_event = threading.Event()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, after_bytes: int) -> None:
        """Cut once clients have sent `after_bytes` more bytes towards the server."""
        with self.lock:
            self.sent = 0
            self.limit = after_bytes
            self.cut_event.clear()

    def cut(self) -> None:
        """Stop now: reset every connection, refuse new ones."""
        with self.lock:
            self.limit = None
            listener, self.listener = self.listener, None
            conns, self.conns = self.conns, []
        if listener is not None:
            listener.close()
        for conn in conns:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            except OSError:
                pass
        self.cut_event.set()

    def restore(self) -> None:
        """Listen (again) on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self.lock:
            self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Stop for good."""
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut or closed
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        over = self.limit is not None and self.sent > self.limit
                    if over:
                        self.cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def s3_settings(endpoint: str, bucket: str, prefix: str = "importer") -> dict[str, str]:
    """Settings (as overrides) for blobs in `bucket` behind `endpoint`, quick to give up on a dead store."""
    return {
        "blob_url": f"s3://{bucket}/{prefix}", "s3_endpoint": endpoint, "s3_access_key_id": "test",
        "s3_secret_access_key": "test", "s3_region": "us-east-1", "blob_timeout": "3", "blob_attempts": "2",
    }


def s3_env(endpoint: str, bucket: str, prefix: str = "importer") -> dict[str, str]:
    """The same as environment variables, the way a deployment sets them (AWS_* for the store)."""
    return {
        "IMPORTER_BLOB_URL": f"s3://{bucket}/{prefix}", "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "IMPORTER_BLOB_TIMEOUT": "3",
        "IMPORTER_BLOB_ATTEMPTS": "2",
    }
