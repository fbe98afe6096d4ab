"""actors.net against real local HTTP(S) and FTP servers: SSRF guard, caps, auth, webhooks.

Over 400 lines on purpose: one test per guard or limit, all against the same local servers.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from standardwebhooks.webhooks import Webhook

from actors.net import (
    DEFAULT_SCHEDULE,
    AllowList,
    Downloaded,
    DownloadError,
    NetError,
    UnsafeTarget,
    backoff_schedule,
    check_url_syntax,
    deliver,
    download,
    new_secret,
    next_delay,
    redact,
    resolve_checked,
    sign,
)
from tests.support import closed_port, unavailable
from tests.support.net_servers import (
    FILE_BODY,
    PASSWORD,
    PASSWORD_IN_URL,
    USER,
    SourceServer,
    ftp_serving,
    serving,
)

LOCAL = AllowList.parse("127.0.0.1")
NOTHING = AllowList()
FILE_SHA = hashlib.sha256(FILE_BODY).hexdigest()


@pytest.fixture(scope="module")
def server() -> Iterator[SourceServer]:
    with serving() as srv:
        yield srv


@pytest.fixture
def src(server: SourceServer) -> SourceServer:
    """The shared server with a clean request log."""
    server.requests.clear()
    server.sent = 0
    return server


class SpyTransport(httpx.HTTPTransport):
    """A real transport that notes every URL it is asked to connect to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls: list[httpx.URL] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return super().handle_request(request)


def get(srv: SourceServer, path: str, dest: Path, **kwargs: Any) -> Downloaded:
    """download() from the local server by IP, allowed by LOCAL unless told otherwise."""
    kwargs.setdefault("allow", LOCAL)
    kwargs.setdefault("max_bytes", 10**6)
    return download(f"http://127.0.0.1:{srv.port}{path}", dest, **kwargs)


def all_text(exc: BaseException) -> str:
    """Everything a log handler could print about an exception, chained causes included."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


# -- downloads over http ------------------------------------------------------------------


def test_download_streams_to_dest_with_size_and_hash(src: SourceServer, tmp_path: Path) -> None:
    got = get(src, "/file", tmp_path / "f")
    assert (got.size, got.sha256, got.content_type) == (len(FILE_BODY), FILE_SHA, "text/csv")
    assert (tmp_path / "f").read_bytes() == FILE_BODY
    assert not (tmp_path / "f.part").exists()
    assert src.requests[0].headers["Host"] == f"127.0.0.1:{src.port}"
    assert src.requests[0].headers["Accept-Encoding"] == "identity"


def test_basic_auth_is_sent_and_the_password_never_shown(
    src: SourceServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{src.port}/auth"
    got = download(url, tmp_path / "f", max_bytes=10**6, allow=LOCAL)
    assert got.sha256 == FILE_SHA
    assert got.final_url == f"http://{USER}:***@127.0.0.1:{src.port}/auth"
    failures = []
    for path in ("/status/404", "/status/503", "/hop/9"):
        with pytest.raises(DownloadError) as caught:
            bad = f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{src.port}{path}"
            download(bad, tmp_path / "g", max_bytes=10**6, allow=LOCAL)
        failures.append(all_text(caught.value))
    with pytest.raises(DownloadError) as refused:
        download(
            f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{closed_port()}/x",
            tmp_path / "g",
            max_bytes=10,
            allow=LOCAL,
        )
    failures.append(all_text(refused.value))
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # the header's value
    for text in [repr(got), caplog.text, *failures]:
        assert PASSWORD not in text and PASSWORD_IN_URL not in text and token not in text


def test_wrong_password_is_a_permanent_failure(src: SourceServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 401") as caught:
        download(
            f"http://{USER}:wrong@127.0.0.1:{src.port}/auth",
            tmp_path / "f",
            max_bytes=10**6,
            allow=LOCAL,
        )
    assert not caught.value.transient and "wrong" not in str(caught.value)


def test_redirect_chain_of_three_is_followed(src: SourceServer, tmp_path: Path) -> None:
    got = get(src, "/hop/3", tmp_path / "f")
    assert got.sha256 == FILE_SHA and got.final_url.endswith("/hop/0")
    assert [r.path for r in src.requests] == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


def test_six_redirects_are_refused(src: SourceServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="redirected more than 5 times") as caught:
        get(src, "/hop/6", tmp_path / "f")
    assert not caught.value.transient
    assert len(src.requests) == 6
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://[::ffff:10.0.0.1]/", "private, embedded in an IPv6 address"),
    ],
)
def test_redirect_to_an_internal_address_is_refused_without_connecting(
    src: SourceServer, tmp_path: Path, to: str, reason: str
) -> None:
    spy = SpyTransport()
    with pytest.raises(UnsafeTarget, match=reason) as caught:
        get(
            src,
            f"/redirect?to={to}",
            tmp_path / "f",
            transport=spy,
        )
    assert "IMPORTER_ALLOWED_HOSTS" in str(caught.value) and not caught.value.transient
    assert [u.host for u in spy.urls] == ["127.0.0.1"]


def test_credentials_stay_within_one_origin(src: SourceServer, tmp_path: Path) -> None:
    both = AllowList.parse("127.0.0.1, localhost")
    creds = f"{USER}:{PASSWORD_IN_URL}@"
    download(
        f"http://{creds}127.0.0.1:{src.port}/hop/1", tmp_path / "a", max_bytes=10**6, allow=both
    )
    assert all("Authorization" in r.headers for r in src.requests)
    src.requests.clear()
    elsewhere = f"http://localhost:{src.port}/file"
    download(
        f"http://{creds}127.0.0.1:{src.port}/redirect?to={elsewhere}",
        tmp_path / "b",
        max_bytes=10**6,
        allow=both,
    )
    assert ["Authorization" in r.headers for r in src.requests] == [True, False]
    assert src.requests[1].headers["Host"] == f"localhost:{src.port}"


def test_a_name_resolving_to_loopback_needs_the_allow_list(
    src: SourceServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://localhost:{src.port}/file"
    with pytest.raises(UnsafeTarget, match=r"host localhost resolves to a non-public address") as refused:
        download(url, tmp_path / "f", max_bytes=10**6, allow=NOTHING)
    assert "127.0.0.1" not in str(refused.value)  # the address goes to the operator's log only
    assert "resolves to 127.0.0.1 (loopback)" in caplog.text
    assert src.requests == []
    got = download(url, tmp_path / "f", max_bytes=10**6, allow=AllowList.parse("localhost"))
    assert got.sha256 == FILE_SHA
    assert src.requests[0].headers["Host"] == f"localhost:{src.port}"


def test_ipv6_loopback_literal_is_refused_and_pinned_in_brackets_when_allowed(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnsafeTarget, match=r"address ::1 is loopback"):
        download("http://[::1]:8080/file", tmp_path / "f", max_bytes=10**6, allow=NOTHING)
    with ExitStack() as stack:
        try:
            srv = stack.enter_context(serving("::1"))
        except OSError:
            unavailable("no IPv6 loopback here")
        got = download(
            f"http://[::1]:{srv.port}/file",
            tmp_path / "f",
            max_bytes=10**6,
            allow=AllowList.parse("::1"),
        )
        assert got.sha256 == FILE_SHA
        assert srv.requests[0].headers["Host"] == f"[::1]:{srv.port}"


def test_dns_rebinding_cannot_swap_the_address_after_the_check(
    src: SourceServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    got = download(
        f"http://rebind.test:{src.port}/file", tmp_path / "f", max_bytes=10**6, allow=LOCAL
    )
    assert got.sha256 == FILE_SHA and lookups == ["rebind.test"]
    assert src.requests[0].headers["Host"] == f"rebind.test:{src.port}"


class PeakRSS:
    """Samples this process's RSS in a thread; `growth` is the peak over the starting value."""

    def __enter__(self) -> PeakRSS:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.growth = self.peak - self.base


def test_oversize_source_is_aborted_mid_stream(src: SourceServer, tmp_path: Path) -> None:
    with PeakRSS() as rss, pytest.raises(DownloadError) as caught:
        get(src, "/endless", tmp_path / "f", max_bytes=16 * 2**20)
    assert str(caught.value) == "source is larger than the 16 MB limit (16777216 bytes)"
    assert not caught.value.transient
    assert not list(tmp_path.iterdir())  # neither the .part file nor dest remains
    assert src.sent < 100 * 2**20  # the server was cut off long before its 200 MB
    assert rss.growth < 30 * 2**20


def test_declared_length_over_the_cap_fails_before_the_body(
    src: SourceServer, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="larger than the 1 MB limit"):
        get(src, "/big-declared", tmp_path / "f", max_bytes=2**20)


def test_stalled_source_hits_the_read_timeout(src: SourceServer, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"stalled: no data .* for 0\.3 s") as caught:
        get(src, "/slow", tmp_path / "f", read_timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert caught.value.transient and not list(tmp_path.iterdir())


def test_dripping_source_hits_the_total_deadline(src: SourceServer, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"source took longer than 0\.4 s") as caught:
        get(src, "/drip", tmp_path / "f", deadline=0.4)
    assert 0.4 <= time.monotonic() - started < 1.5
    assert caught.value.transient


@pytest.mark.parametrize(
    ("status", "transient"), [(404, False), (410, False), (429, True), (503, True)]
)
def test_http_error_statuses(
    src: SourceServer, tmp_path: Path, status: int, transient: bool
) -> None:
    with pytest.raises(DownloadError, match=f"^source returned HTTP {status}$") as caught:
        get(src, f"/status/{status}", tmp_path / "f")
    assert caught.value.transient is transient


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(DownloadError, match=f"^cannot connect to 127.0.0.1:{port}$") as caught:
        download(f"http://127.0.0.1:{port}/f", tmp_path / "f", max_bytes=10, allow=LOCAL)
    assert caught.value.transient


def test_unresolvable_name(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="^cannot resolve host no-such-host.invalid$"):
        download("http://no-such-host.invalid/f.csv", tmp_path / "f", max_bytes=10, allow=NOTHING)


def test_nxdomain_is_permanent_and_a_resolver_hiccup_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for errno, transient in ((socket.EAI_NONAME, False), (socket.EAI_AGAIN, True)):

        def failing(*_: Any, errno: int = errno, **__: Any) -> Any:
            raise socket.gaierror(errno, "resolver says no")

        monkeypatch.setattr(socket, "getaddrinfo", failing)
        with pytest.raises(DownloadError, match="cannot resolve host x.example") as caught:
            resolve_checked("x.example", 80, NOTHING)
        assert caught.value.transient is transient


def test_compressed_body_is_refused(src: SourceServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="gzip-compressed"):
        get(src, "/gzip", tmp_path / "f")


# -- https: the pinned IP in the URL, the name in Host, SNI and certificate checks --------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", key, "-out", crt, "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, crt


def test_https_uses_the_name_for_sni_and_certificate_while_connecting_to_the_ip(
    cert: tuple[Path, Path], tmp_path: Path
) -> None:
    key, crt = cert
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(crt, key)
    trust = ssl.create_default_context(cafile=str(crt))
    with serving(tls=server_tls) as srv:
        spy = SpyTransport(verify=trust)
        got = download(
            f"https://localhost:{srv.port}/file",
            tmp_path / "f",
            max_bytes=10**6,
            allow=AllowList.parse("localhost"),
            transport=spy,
        )
        assert got.sha256 == FILE_SHA and got.final_url == f"https://localhost:{srv.port}/file"
        assert spy.urls[0].host == "127.0.0.1"  # connected to the checked address...
        assert srv.sni == ["localhost"]  # ...yet told the server the name,
        assert srv.requests[0].headers["Host"] == f"localhost:{srv.port}"
        # ...and verified the certificate against the name: the IP itself is not in it.
        with pytest.raises(DownloadError, match="TLS with 127.0.0.1:.* certificate") as caught:
            download(
                f"https://127.0.0.1:{srv.port}/file",
                tmp_path / "g",
                max_bytes=10**6,
                allow=LOCAL,
                transport=httpx.HTTPTransport(verify=trust),
            )
        assert not caught.value.transient


# -- ftp -----------------------------------------------------------------------------------


@pytest.mark.parametrize("masquerade", [None, "10.0.0.1"])
def test_ftp_download_with_credentials(tmp_path: Path, masquerade: str | None) -> None:
    """With `masquerade` the server's PASV reply names 10.0.0.1; the client must ignore it."""
    with ftp_serving(tmp_path / "site", masquerade) as site:
        url = f"ftp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{site.port}/data/file.csv"
        got = download(url, tmp_path / "f", max_bytes=10**6, allow=LOCAL)
    assert (got.size, got.sha256) == (len(FILE_BODY), FILE_SHA)
    assert got.final_url == f"ftp://{USER}:***@127.0.0.1:{site.port}/data/file.csv"
    assert PASSWORD not in repr(got)


def test_ftp_failures(tmp_path: Path) -> None:
    with ftp_serving(tmp_path / "site") as site:
        base = f"ftp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{site.port}"
        with pytest.raises(DownloadError, match="larger than the") as big:
            download(f"{base}/data/file.csv", tmp_path / "f", max_bytes=1000, allow=LOCAL)
        with pytest.raises(DownloadError, match="refused: 550") as missing:
            download(f"{base}/data/nope.csv", tmp_path / "f", max_bytes=10**6, allow=LOCAL)
        with pytest.raises(DownloadError, match="refused: 530") as login:
            download(
                f"ftp://{USER}:wrong@127.0.0.1:{site.port}/data/file.csv",
                tmp_path / "f",
                max_bytes=10**6,
                allow=LOCAL,
            )
        with pytest.raises(UnsafeTarget, match="loopback"):
            download(f"{base}/data/file.csv", tmp_path / "f", max_bytes=10**6, allow=NOTHING)
    for caught in (big, missing, login):
        assert not caught.value.transient and PASSWORD not in all_text(caught.value)
    assert not list(tmp_path.glob("f*"))


# -- the guard's pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
     "0.0.0.0", "224.0.0.1", "240.0.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1",
     "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::",
     "64:ff9b::a00:1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeTarget, match="^refused: address .*IMPORTER_ALLOWED_HOSTS$"):
        resolve_checked(address, 80, NOTHING)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert resolve_checked(address, 443, NOTHING) == [str(ipaddress.ip_address(address))]


def test_allow_list() -> None:
    allow = AllowList.parse(" localhost, 10.0.0.0/8,files.internal.  ::1 ")
    assert allow.hosts == {"localhost", "files.internal"}
    assert resolve_checked("10.9.9.9", 80, allow) == ["10.9.9.9"]
    assert resolve_checked("::ffff:10.9.9.9", 80, allow) == ["::ffff:a09:909"]
    with pytest.raises(UnsafeTarget):
        resolve_checked("192.168.0.1", 80, allow)
    assert AllowList.parse("") == AllowList()
    for bad in ("http://x", "host!", "-x.com", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="IMPORTER_ALLOWED_HOSTS entry"):
            AllowList.parse(f"ok.example,{bad}")


def test_headers_trickling_in_still_hit_the_total_deadline(src: SourceServer, tmp_path: Path) -> None:
    """Each byte arrives well inside the read timeout; only the total deadline can end it."""
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"source took longer than 0\.4 s") as caught:
        get(src, "/drip-headers", tmp_path / "f", deadline=0.4, read_timeout=5)
    assert 0.4 <= time.monotonic() - started < 1.5
    assert caught.value.transient and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host/p?q", "https://user:***@host/p?q"),
        ("https://token@host:8443/p", "https://***@host:8443/p"),
        ("ftp://u:p%40ss@h/a@b", "ftp://u:***@h/a@b"),
        ("https://host/p?user=a@b", "https://host/p?user=a@b"),
        ("not a url", "not a url"),
        (  # an S3 presigned URL: the signature and the session token are secrets, the rest is not
            "https://b.s3.amazonaws.com/f.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101"
            "&X-Amz-Signature=abc123&X-Amz-Security-Token=tok&X-Amz-Expires=900",
            "https://b.s3.amazonaws.com/f.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
            "&X-Amz-Signature=***&X-Amz-Security-Token=***&X-Amz-Expires=900",
        ),
        ("https://acct.blob.core.windows.net/c/f.csv?sv=2022&se=2030&sp=r&sig=s3cr%2Bt", "https://acct.blob.core.windows.net/c/f.csv?sv=2022&se=2030&sp=r&sig=***"),
        ("https://u:p@h/f?access_token=x&page=2#api_key=frag", "https://u:***@h/f?access_token=***&page=2#api_key=frag"),
        ("https://h/f?token=&key", "https://h/f?token=&key"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "scheme file is not allowed"),
        ("gopher://h/", "scheme gopher is not allowed"),
        ("//h/x", r"scheme \(none\)"),
        ("http:///nohost", "has no host"),
        ("http://h:99999/", "not a valid URL"),
        ("http://h:0/", "port 0"),
        ("http://h/a b", "whitespace"),
        ("http://h/a\r\nX: y", "control characters"),
        ("http://[::1/", "not a valid URL"),
        ("http://ex ample.com/", "whitespace"),
        ("http://exa$mple.com/", "not a valid host name"),
    ],
)
def test_check_url_syntax_refusals(url: str, message: str) -> None:
    with pytest.raises(UnsafeTarget, match=message):
        check_url_syntax(url)


def test_check_url_syntax_accepts_and_never_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("DNS used"))
    for url in (
        "https://u:p@files.example:8443/a.csv?x=1",
        "ftp://files.example/a.csv",
        "http://[2001:db8::1]/",
    ):
        check_url_syntax(url)
    with pytest.raises(UnsafeTarget, match="scheme ftp"):
        check_url_syntax("ftp://h/x", schemes=frozenset({"https"}))


# -- webhooks ----------------------------------------------------------------------------------


def hook(src: SourceServer, path: str = "/hook", **kwargs: Any) -> Any:
    """Deliver one test message to the local receiver."""
    body = json.dumps({"type": "import.completed", "ticket": 7}).encode()
    kwargs.setdefault("allow", LOCAL)
    kwargs.setdefault("secret", new_secret())
    return deliver(
        f"http://127.0.0.1:{src.port}{path}",
        body,
        msg_id="msg_1",
        timestamp=int(time.time()),
        **kwargs,
    )


def test_webhook_signature_verifies_as_a_receiver_would(src: SourceServer) -> None:
    secret = new_secret()
    attempt = hook(src, secret=secret)
    assert attempt.ok and (attempt.status, attempt.error) == (204, None)
    got = src.requests[0]
    assert (
        got.headers["Content-Type"] == "application/json" and got.headers["webhook-id"] == "msg_1"
    )
    assert Webhook(secret).verify(got.body, got.headers) == {
        "type": "import.completed",
        "ticket": 7,
    }


def test_sign_matches_the_reference_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    when = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    reference = Webhook(secret).sign("msg_x", when, '{"a":1}')
    assert sign(secret, "msg_x", 1_700_000_000, b'{"a":1}') == reference


def test_webhook_failures_become_attempts(src: SourceServer) -> None:
    unavailable = hook(src, "/hook/status/503")
    assert (unavailable.ok, unavailable.status) == (False, 503) and "503" in (
        unavailable.error or ""
    )
    redirected = hook(src, "/hook/redirect")
    assert (
        not redirected.ok
        and redirected.status == 302
        and "not followed" in (redirected.error or "")
    )
    assert [r.path for r in src.requests] == ["/hook/status/503", "/hook/redirect"]
    slow = hook(src, "/hook/slow", timeout=0.3)
    assert (slow.status, slow.error) == (None, "timed out after 0.3 s")
    assert 300 <= slow.duration_ms < 2000
    port = closed_port()
    refused = deliver(
        f"http://127.0.0.1:{port}/h",
        b"{}",
        secret=new_secret(),
        msg_id="m",
        timestamp=0,
        allow=LOCAL,
    )
    assert refused.status is None and "connection refused" in (refused.error or "")


def test_webhook_ssrf_guard(src: SourceServer) -> None:
    local = hook(src, allow=NOTHING)
    assert local.status is None and "loopback" in (local.error or "")
    metadata = deliver(
        "http://169.254.169.254/h",
        b"{}",
        secret=new_secret(),
        msg_id="m",
        timestamp=0,
        allow=NOTHING,
    )
    assert "cloud metadata" in (metadata.error or "")
    bad = deliver("ftp://h/x", b"{}", secret=new_secret(), msg_id="m", timestamp=0, allow=NOTHING)
    assert "scheme ftp is not allowed" in (bad.error or "")
    assert src.requests == []


def test_backoff_schedule() -> None:
    schedule = backoff_schedule(DEFAULT_SCHEDULE)
    assert schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert 27 * 3600 < sum(schedule) < 28 * 3600
    assert backoff_schedule(" 1.5h , 250ms,2d, 7") == (5400, 0.25, 172800, 7)
    for bad in ("", "5s,,5m", "5x", "-5s", "five", "5 s"):
        with pytest.raises(ValueError, match="bad retry schedule step"):
            backoff_schedule(bad)


def test_next_delay() -> None:
    schedule = (5.0, 300.0)
    assert next_delay(schedule, 1, rand=lambda: 0.5) == 5.0
    assert next_delay(schedule, 2, rand=lambda: 0.0) == pytest.approx(270.0)
    assert next_delay(schedule, 2, rand=lambda: 1.0) == pytest.approx(330.0)
    assert next_delay(schedule, 2, jitter=0, rand=lambda: 0.9) == 300.0
    assert next_delay(schedule, 3) is None
    assert all(4.5 <= (next_delay(schedule, 1) or 0) <= 5.5 for _ in range(100))
    with pytest.raises(ValueError):
        next_delay(schedule, 0)


def test_errors_share_one_base() -> None:
    assert issubclass(UnsafeTarget, DownloadError) and issubclass(DownloadError, NetError)
