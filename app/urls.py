"""URL sources at submission: syntax and SSRF checks that can be known before any download."""

from __future__ import annotations

import msgspec

from actors.runtime import Runtime
from app.errors import BadRequest


class Source(msgspec.Struct, frozen=True):
    """A source URI: the secret form (with credentials) and the redacted form for the log."""

    secret: str
    redacted: str


def prepare_source(rt: Runtime, uri: str) -> Source:
    """Check a source URI at submission; 400 for what is wrong with it."""
    from actors.net import NetError, check_url_syntax, redact

    try:
        check_url_syntax(uri)
    except NetError as exc:
        raise BadRequest(str(exc), code="invalid_uri", field="uri") from None
    return Source(secret=uri, redacted=redact(uri))
