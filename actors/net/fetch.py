"""download(): stream an http(s) or ftp source to a file, SSRF-checked, with size and time caps."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import httpcore
import httpx
import msgspec

from actors.net import ftp
from actors.net.errors import DownloadError, UnsafeTarget
from actors.net.ssrf import AllowList, Target, parse_target, resolve_checked

log = logging.getLogger(__name__)

HTTP_SCHEMES = frozenset({"http", "https"})
USER_AGENT = "importer/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Downloaded(msgspec.Struct, frozen=True):
    """What download() stored: size, hash, declared type and the (redacted) URL it came from."""

    size: int
    sha256: str
    content_type: str | None
    final_url: str


class Sink:
    """The .part file being written: hashes as it goes, enforces the byte cap and the deadline."""

    def __init__(self, file: BinaryIO, *, max_bytes: int, deadline: float) -> None:
        self.file = file
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.size = 0
        self.digest = hashlib.sha256()
        self.started = time.monotonic()

    def expired(self) -> bool:
        """True once the total deadline has passed."""
        return time.monotonic() - self.started >= self.deadline

    def overdue(self) -> DownloadError:
        """The error for a source that took longer than the total deadline."""
        return DownloadError(f"source took longer than {self.deadline:g} s", transient=True)

    def remaining(self) -> float:
        """Seconds left before the total deadline; raises once it has passed."""
        left = self.deadline - (time.monotonic() - self.started)
        if left <= 0:
            raise self.overdue()
        return left

    def expect(self, size: int | None) -> None:
        """Fail before reading a byte when the source announces a size over the cap."""
        if size is not None and size > self.max_bytes:
            raise too_large(self.max_bytes)

    def write(self, chunk: bytes) -> None:
        """Append a chunk, or abort (the caller closes the connection) past a cap."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self.remaining()
        self.digest.update(chunk)
        self.file.write(chunk)


def too_large(max_bytes: int) -> DownloadError:
    """The error for a source over the byte cap, with the cap in MB and exact bytes."""
    mb = max_bytes / 1_048_576
    shown = f"{mb:.0f}" if mb >= 10 else f"{mb:.3g}"
    return DownloadError(f"source is larger than the {shown} MB limit ({max_bytes} bytes)")


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int,
    allow: AllowList,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    deadline: float = 300.0,
    max_redirects: int = 5,
    transport: httpx.BaseTransport | None = None,
) -> Downloaded:
    """Stream an http(s) or ftp source to `dest` via `dest.part`; errors are DownloadError."""
    target = parse_target(url)
    dest_path = Path(dest)
    part = dest_path.with_name(dest_path.name + ".part")
    content_type: str | None = None
    try:
        with open(part, "wb") as file:
            sink = Sink(file, max_bytes=max_bytes, deadline=deadline)
            if target.scheme == "ftp":
                ftp.retrieve(
                    target, allow, sink, connect_timeout=connect_timeout, read_timeout=read_timeout
                )
            else:
                client = open_client(transport, deadline=deadline)
                try:
                    target, content_type = _fetch_http(
                        client, target, allow, sink, connect_timeout, read_timeout, max_redirects
                    )
                finally:
                    if transport is None:  # a caller's transport is the caller's to close
                        client.close()
            file.flush()
            os.fsync(file.fileno())  # the rename below must not publish a half-written file
        os.replace(part, dest_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    done = Downloaded(sink.size, sink.digest.hexdigest(), content_type, target.display)
    log.info("downloaded %s: %d bytes, sha256 %s", done.final_url, done.size, done.sha256)
    return done


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read, write and handshake waits no later than the total deadline."""

    def __init__(self, inner: httpcore.NetworkStream, clamp: Callable[[float | None], float]) -> None:
        self._inner = inner
        self._clamp = clamp

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._clamp(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._clamp(timeout)), self._clamp)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Sockets bounded by a total deadline, not only per read: a server that trickles its headers
    a byte at a time just inside the read timeout is cut off when the deadline passes."""

    def __init__(self, ends_at: float) -> None:
        self._inner = httpcore.SyncBackend()
        self.ends_at = ends_at

    def clamp(self, timeout: float | None) -> float:
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the total deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self.clamp(timeout), local_address, socket_options)
        return _DeadlineStream(stream, self.clamp)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise NotImplementedError("sources and webhooks are reached over TCP")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def open_client(transport: httpx.BaseTransport | None, *, deadline: float | None = None) -> httpx.Client:
    """An httpx client that never follows redirects, ignores proxy env vars and keeps no pool.

    With `deadline` (seconds from now), no socket operation of the client waits past it.
    """
    if transport is None:
        # No keep-alive: a pooled TLS connection is keyed by IP, so a later request to another
        # name on the same IP could reuse a connection whose certificate was checked for the first.
        transport = httpx.HTTPTransport(retries=0, limits=httpx.Limits(max_keepalive_connections=0))
        if deadline is not None:
            # httpx takes no network backend, so its pool is rebuilt the same way with ours.
            transport._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(), max_keepalive_connections=0, retries=0,
                network_backend=_DeadlineBackend(time.monotonic() + deadline),
            )
    # trust_env=False: an HTTP(S)_PROXY would make the proxy resolve the name, undoing the pin.
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False)


def send_pinned(
    client: httpx.Client,
    method: str,
    target: Target,
    ips: list[str],
    *,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    content: bytes | None = None,
) -> httpx.Response:
    """Send to the checked addresses in turn (no second lookup), naming the host in Host and SNI."""
    headers = {"Host": target.host_header, "User-Agent": USER_AGENT, **headers}
    if target.username is not None:
        pair = f"{target.username}:{target.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    # httpcore uses this name for SNI and for certificate verification instead of the URL's IP.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    client.cookies.clear()  # cookies are keyed by the pinned IP; never carry them across hops
    failure: httpx.ConnectError | None = None
    for ip in ips:
        request = client.build_request(
            method,
            target.pinned_url(ip),
            headers=headers,
            content=content,
            timeout=timeout,
            extensions=extensions,
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            if _tls_failure(exc) is not None:
                raise  # another address would present the same certificate
            failure = exc
    assert failure is not None, "resolve_checked never returns an empty list"
    raise failure


def describe_http_error(exc: httpx.HTTPError | httpx.InvalidURL, target: Target) -> DownloadError:
    """Translate an httpx exception into a message naming the host, never the credentials."""
    if isinstance(exc, httpx.ConnectTimeout):
        return DownloadError(f"timed out connecting to {target.hostport}", transient=True)
    if isinstance(exc, httpx.ConnectError):
        reason = _tls_failure(exc)
        if reason is not None:
            return DownloadError(f"TLS with {target.hostport} failed: {reason}", transient=False)
        return DownloadError(f"cannot connect to {target.hostport}", transient=True)
    if isinstance(exc, httpx.TimeoutException):
        return DownloadError(f"timed out talking to {target.hostport}", transient=True)
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return DownloadError(
            f"connection to {target.hostport} broke during the transfer", transient=True
        )
    return DownloadError(f"cannot fetch {target.display}: {type(exc).__name__}", transient=False)


def _fetch_http(
    client: httpx.Client,
    target: Target,
    allow: AllowList,
    sink: Sink,
    connect_timeout: float,
    read_timeout: float,
    max_redirects: int,
) -> tuple[Target, str | None]:
    """Follow up to max_redirects redirects by hand, streaming the final body into the sink."""
    for _hop in range(max_redirects + 1):
        ips = resolve_checked(target.host, target.port, allow)
        left = sink.remaining()
        read = min(read_timeout, left)
        timeout = httpx.Timeout(min(connect_timeout, left), read=read)
        try:
            response = send_pinned(
                client, "GET", target, ips, headers={"Accept-Encoding": "identity"}, timeout=timeout
            )
            try:
                if response.status_code not in _REDIRECTS:
                    _check_response(response, target, sink)
                    for chunk in response.iter_raw():
                        sink.write(chunk)
                    return target, response.headers.get("content-type")
                target = _redirect_target(target, response)
            finally:
                response.close()
        except httpx.ReadTimeout:
            if read < read_timeout or sink.expired():  # cut short to honour the total deadline
                raise sink.overdue() from None
            raise DownloadError(
                f"source stalled: no data from {target.hostport} for {read_timeout:g} s",
                transient=True,
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if sink.expired():
                raise sink.overdue() from exc
            raise describe_http_error(exc, target) from exc
    raise DownloadError(f"source redirected more than {max_redirects} times", transient=False)


def _check_response(response: httpx.Response, target: Target, sink: Sink) -> None:
    """Refuse error statuses, compressed bodies and announced sizes over the cap."""
    status = response.status_code
    if status >= 300 or status < 200:
        transient = status >= 500 or status in (408, 429)
        hint = " (check the credentials in the URL)" if status in (401, 403) else ""
        raise DownloadError(f"source returned HTTP {status}{hint}", transient=transient)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decoding would let a small compressed body expand past the cap in one chunk.
        raise DownloadError(
            f"source sent a {encoding}-compressed body although none was asked for; "
            "serve the file uncompressed"
        )
    length = response.headers.get("content-length", "")
    sink.expect(int(length) if length.isdigit() else None)


def _redirect_target(current: Target, response: httpx.Response) -> Target:
    """The checked next hop; credentials only travel to the same origin."""
    location = response.headers.get("location")
    if not location:
        raise DownloadError(f"source returned HTTP {response.status_code} without a Location")
    try:
        following = parse_target(urljoin(current.url, location), HTTP_SCHEMES)
    except UnsafeTarget as exc:
        raise UnsafeTarget(f"{exc} (a redirect from {current.display})") from None
    if following.origin != current.origin:
        following = msgspec.structs.replace(following, username=None, password=None)
    elif following.username is None:
        following = msgspec.structs.replace(
            following, username=current.username, password=current.password
        )
    log.debug("redirect %s -> %s", current.display, following.display)
    return following


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS reason behind a connect error, if it was one (walks the exception chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"handshake failed ({seen.reason or type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__
    return None
