"""Local servers for the tests: free ports, a webhook receiver, and a site that serves files and takes callbacks."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_SITE_USER, _SITE_PASSWORD = "feeds", "s3cr:t@pw"


def free_port() -> int:
    """A TCP port nobody listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


closed_port = free_port  # where a test wants "connection refused", the name says so


@contextmanager
def in_thread(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve in a thread for the duration of the block; shut down and joined afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Receiver(ThreadingHTTPServer):
    """A webhook receiver: records every POST and answers `status` (204 unless the test sets one);
    while a test has set `hold`, it answers only once that event is set (or after 3 s)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.status = 204
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.hold: threading.Event | None = None

    @property
    def url(self) -> str:
        """Where to send callbacks."""
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    @property
    def received(self) -> list[dict[str, str]]:
        """The headers of every POST so far, in order."""
        with self.lock:
            return [headers for _, headers, _ in self.posts]


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """Record the callback, then answer."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.posts.append((self.path, dict(self.headers.items()), body))
        if self.server.hold is not None:
            self.server.hold.wait(3)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A running webhook receiver."""
    server = Receiver()
    with in_thread(server):
        yield server


class Site(ThreadingHTTPServer):
    """A source of files (one route behind basic auth) and a receiver of callbacks."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SiteHandler)
        self.files: dict[str, bytes] = {}
        self.hooks: list[tuple[str, dict[str, str], bytes]] = []

    def url(self, path: str, auth: bool = False) -> str:
        """The URL of a path here, with the basic-auth credentials in it when asked."""
        creds = f"{_SITE_USER}:{_SITE_PASSWORD.replace(':', '%3A').replace('@', '%40')}@" if auth else ""
        return f"http://{creds}127.0.0.1:{self.server_address[1]}{path}"


class _SiteHandler(BaseHTTPRequestHandler):
    """GET /files/<name>, GET /secure/<name> (basic auth), POST /hook."""

    server: Site

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Quiet."""

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Serve a file."""
        kind, _, name = self.path.lstrip("/").partition("/")
        if kind == "secure":
            expected = "Basic " + base64.b64encode(f"{_SITE_USER}:{_SITE_PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._send(401, b"who are you")
                return
        body = self.server.files.get(name)
        if body is not None and kind in ("files", "secure"):
            self._send(200, body)
        else:
            self._send(404)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """Receive a callback."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hooks.append((self.path, dict(self.headers.items()), body))
        self._send(204)


@contextmanager
def serving_site() -> Iterator[Site]:
    """A running Site."""
    server = Site()
    with in_thread(server):
        yield server
