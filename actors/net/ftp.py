"""FTP retrieval for download(): stdlib ftplib, passive mode, pinned to the checked address."""

from __future__ import annotations

import ftplib
import logging
from typing import Protocol
from urllib.parse import unquote

from actors.net.errors import DownloadError, UnsafeTarget
from actors.net.ssrf import AllowList, Target, resolve_checked

log = logging.getLogger(__name__)

BLOCK_SIZE = 64 * 1024


class Sink(Protocol):
    """Where the bytes go; it raises DownloadError past the byte cap or the deadline."""

    def remaining(self) -> float: ...

    def expect(self, size: int | None) -> None: ...

    def write(self, chunk: bytes) -> None: ...


def retrieve(
    target: Target,
    allow: AllowList,
    sink: Sink,
    *,
    connect_timeout: float,
    read_timeout: float,
) -> None:
    """RETR the file named by an ftp:// Target into the sink; failures become DownloadError."""
    path = _remote_path(target)
    ips = resolve_checked(target.host, target.port, allow)
    client = _connect(target, ips, min(connect_timeout, sink.remaining()))
    stall = min(read_timeout, sink.remaining())
    try:
        # ftplib opens data connections with self.timeout and reads the control socket with
        # the socket's own timeout: both become the stall limit from here on.
        client.timeout = stall
        if client.sock is not None:
            client.sock.settimeout(stall)
        client.login(target.username or "anonymous", target.password or "anonymous@")
        client.voidcmd("TYPE I")
        sink.expect(_size(client, path))
        client.retrbinary(f"RETR {path}", sink.write, blocksize=BLOCK_SIZE)
    except ftplib.error_perm as exc:
        raise DownloadError(
            f"ftp server {target.hostport} refused: {_reply(exc, target)}", transient=False
        ) from None
    except ftplib.error_temp as exc:
        raise DownloadError(
            f"ftp server {target.hostport} is busy: {_reply(exc, target)}", transient=True
        ) from None
    except TimeoutError:
        raise DownloadError(
            f"source stalled: no data from {target.hostport} for {stall:g} s", transient=True
        ) from None
    except (OSError, EOFError, ftplib.Error):
        raise DownloadError(
            f"connection to {target.hostport} broke during the transfer", transient=True
        ) from None
    finally:
        client.close()  # not quit(): after an abort the server may never answer QUIT
    log.debug("ftp %s: %s retrieved", target.display, path)


def _connect(target: Target, ips: list[str], timeout: float) -> ftplib.FTP:
    """Open the control connection to the first checked address that answers."""
    for ip in ips:
        client = ftplib.FTP(timeout=timeout)
        # PASV replies name an address; ftplib ignores it and reuses the control connection's
        # peer (our checked IP), so a server cannot point the data connection elsewhere.
        client.trust_server_pasv_ipv4_address = False  # type: ignore[attr-defined]  # not in typeshed
        try:
            client.connect(ip, target.port)
            return client
        except TimeoutError:
            client.close()
            raise DownloadError(
                f"timed out connecting to {target.hostport}", transient=True
            ) from None
        except (OSError, EOFError, ftplib.Error):
            client.close()
    raise DownloadError(f"cannot connect to {target.hostport}", transient=True)


def _remote_path(target: Target) -> str:
    """The path relative to the login directory (RFC 1738: '/%2F' spells an absolute path)."""
    path = unquote(target.path.removeprefix("/"))
    if not path or path.endswith("/"):
        raise UnsafeTarget(f"refused: {target.display} does not name a file")
    if any(ch in path for ch in "\r\n\0"):
        # Percent-encoded CR/LF would otherwise inject extra FTP commands.
        raise UnsafeTarget(f"refused: {target.display} has control characters in its path")
    return path


def _size(client: ftplib.FTP, path: str) -> int | None:
    """The server's SIZE for the file, when it supports the command."""
    try:
        return client.size(path)
    except (ftplib.error_perm, ftplib.error_reply, ValueError):
        return None


def _reply(exc: ftplib.Error, target: Target) -> str:
    """The server's reply line, with the password masked in case the server echoes it."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if target.password:
        text = text.replace(target.password, "***")
    return text
