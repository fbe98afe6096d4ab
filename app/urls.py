"""URLs at submission: source URIs and callback targets get the SSRF guard's verdict before acceptance."""

from __future__ import annotations

import msgspec

from actors.runtime import Runtime
from app.errors import BadRequest


class Source(msgspec.Struct, frozen=True):
    """A source URI: the secret form (with credentials) and the redacted form for the log."""

    secret: str
    redacted: str


def check_url(rt: Runtime, uri: str, *, field: str, callback: bool = False) -> None:
    """The one submission check of a URL: syntax, scheme and the addresses its host resolves to.

    A refused target (loopback, private, link-local or metadata, unspecified, a scheme other than
    http/https (+ ftp for sources), or a name resolving to such an address) is a 400 naming the
    field. A name that does not resolve now is accepted: the download or delivery decides later,
    and checks again (DNS may change). Blocking (DNS): call it off the event loop.
    """
    from actors.net import HTTP_SCHEMES, NetError, UnsafeTarget, check_target
    from actors.net.ssrf import DEFAULT_SCHEMES

    try:
        check_target(uri, rt.allow, HTTP_SCHEMES if callback else DEFAULT_SCHEMES)
    except UnsafeTarget as exc:
        message = f"{field} {exc}" if callback else str(exc)
        raise BadRequest(message, code="invalid_uri", field=field) from None
    except NetError:
        pass


def prepare_source(rt: Runtime, uri: str, field: str = "uri") -> Source:
    """Check a source URI at submission; 400 for what is wrong with it."""
    from actors.net import redact

    check_url(rt, uri, field=field)
    return Source(secret=uri, redacted=redact(uri))


def prepare_callback(rt: Runtime, uri: str | None, field: str) -> str | None:
    """Check a callback target at submission (None or '' means no callback); 400 when refused."""
    if not uri:
        return None
    check_url(rt, uri, field=field, callback=True)
    return uri
