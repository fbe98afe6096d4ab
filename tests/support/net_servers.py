"""Real local servers for the actors.net tests: an HTTP(S) source/receiver with many routes, and an FTP server."""

from __future__ import annotations

import base64
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

FILE_BODY = random.Random(7).randbytes(300_000)
USER, PASSWORD = "alice", "pa:ss@w/rd-7Zq"  # needs percent-encoding in a URL
PASSWORD_IN_URL = "pa%3Ass%40w%2Frd-7Zq"
ENDLESS_BYTES = 200 * 1024 * 1024
CHUNK = 64 * 1024


class Recorded:
    """One request as the server saw it."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class SourceServer(ThreadingHTTPServer):
    """Serves the routes the tests need and records every request it gets."""

    daemon_threads = True

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Handler)
        self.requests: list[Recorded] = []
        self.sni: list[str | None] = []
        self.sent = 0
        # Slow routes wait on this instead of sleeping, so teardown releases them at once.
        self.release = threading.Event()
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        """The port the OS picked."""
        return int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    """Routes: /file /auth /hop/N /redirect?to= /endless /slow /drip /drip-headers /status/N /gzip
    /big-declared; POST /hook, /hook/status/N, /hook/slow, /hook/redirect."""

    server: SourceServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Keep test output quiet."""

    def _record(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            Recorded(self.command, self.path, dict(self.headers.items()), body)
        )
        return urlsplit(self.path).path

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Serve a source route."""
        path = self._record()
        query = parse_qs(urlsplit(self.path).query)
        if path == "/file":
            self._send(200, FILE_BODY, {"Content-Type": "text/csv"})
        elif path == "/auth":
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") == expected:
                self._send(200, FILE_BODY)
            else:
                self._send(401, b"who are you", {"WWW-Authenticate": 'Basic realm="t"'})
        elif path.startswith("/hop/"):
            left = int(path.removeprefix("/hop/"))
            if left == 0:
                self._send(200, FILE_BODY)
            else:
                self._send(302, headers={"Location": f"/hop/{left - 1}"})
        elif path == "/redirect":
            self._send(302, headers={"Location": query["to"][0]})
        elif path == "/endless":
            self._endless()
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.server.release.wait(5)
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "200")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                if self.server.release.wait(0.05):
                    return
        elif path == "/drip-headers":  # a header a byte at a time, each well inside any read timeout
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(400):
                self.wfile.write(b"a")
                self.wfile.flush()
                if self.server.release.wait(0.05):
                    return
        elif path.startswith("/status/"):
            self._send(int(path.removeprefix("/status/")), b"nope")
        elif path == "/gzip":
            self._send(200, b"\x1f\x8b not really", {"Content-Encoding": "gzip"})
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(b"x" * 1000)
        else:
            self._send(404, b"no such route")

    def _endless(self) -> None:
        """200 MB with no Content-Length (HTTP/1.0, close-delimited): only a running count stops it."""
        self.send_response(200)
        self.end_headers()
        block = b"e" * CHUNK
        try:
            while self.server.sent < ENDLESS_BYTES and not self.server.release.is_set():
                self.wfile.write(block)
                self.server.sent += len(block)
        except OSError:
            pass  # the client hung up, which is what the test wants

    def do_POST(self) -> None:
        """Receive a webhook."""
        path = self._record()
        if path == "/hook":
            self._send(204)
        elif path.startswith("/hook/status/"):
            self._send(int(path.removeprefix("/hook/status/")), b"nope")
        elif path == "/hook/slow":
            self.server.release.wait(5)
            self._send(200)
        elif path == "/hook/redirect":
            self._send(302, headers={"Location": "/hook"})
        else:
            self._send(404)


@contextmanager
def serving(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[SourceServer]:
    """Run a SourceServer in a thread for the duration of the block."""
    server = SourceServer(host, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class FtpSite:
    """A running pyftpdlib server with one user whose home holds data/file.csv."""

    def __init__(self, server: FTPServer, root: Path) -> None:
        self.server, self.root = server, root
        self.port = int(server.address[1])  # kept: the address is gone once the server closes


@contextmanager
def ftp_serving(root: Path, masquerade: str | None = None) -> Iterator[FtpSite]:
    """Run an FTP server in a thread; `masquerade` makes PASV replies name another address."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "file.csv").write_bytes(FILE_BODY)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    handler.masquerade_address = masquerade
    handler.auth_failed_timeout = 0.01  # pyftpdlib stalls 3 s after a wrong password by default
    # Its own IOLoop: the default one is a process-wide singleton shared by every server.
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.ioloop.loop(timeout=0.05, blocking=False)
        server.close_all()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield FtpSite(server, root)
    finally:
        stop.set()
        thread.join(5)

