"""SSRF-safe fetching of sources (http, https, ftp) and Standard Webhooks delivery."""

from actors.net.errors import DownloadError, NetError, UnsafeTarget
from actors.net.fetch import HTTP_SCHEMES, Downloaded, download
from actors.net.ssrf import AllowList, check_target, check_url_syntax, redact, resolve_checked
from actors.net.webhooks import (
    DEFAULT_SCHEDULE,
    Attempt,
    backoff_schedule,
    deliver,
    new_secret,
    next_delay,
    sign,
)

__all__ = [
    "DEFAULT_SCHEDULE",
    "HTTP_SCHEMES",
    "AllowList",
    "Attempt",
    "DownloadError",
    "Downloaded",
    "NetError",
    "UnsafeTarget",
    "backoff_schedule",
    "check_target",
    "check_url_syntax",
    "deliver",
    "download",
    "new_secret",
    "next_delay",
    "redact",
    "resolve_checked",
    "sign",
]
