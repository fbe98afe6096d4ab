"""Standard Webhooks delivery: secrets, signatures, one SSRF-checked POST, the retry schedule."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import random
import re
import secrets
import time
from collections.abc import Callable

import httpx
import msgspec

from actors.net.errors import NetError, UnsafeTarget
from actors.net.fetch import HTTP_SCHEMES, describe_http_error, open_client, send_pinned
from actors.net.ssrf import AllowList, check_target

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
# The Standard Webhooks / Svix schedule: 8 attempts over about 27.5 hours.
DEFAULT_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_STEP = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")


class Attempt(msgspec.Struct, frozen=True):
    """The outcome of one delivery: the receiver's status, or why there was none."""

    status: int | None
    error: str | None
    duration_ms: int
    permanent: bool = False  # refused by the SSRF guard: no retry can succeed

    @property
    def ok(self) -> bool:
        """A 2xx answer; anything else but a permanent refusal is retried by the schedule."""
        return self.status is not None and 200 <= self.status < 300


def new_secret() -> str:
    """A fresh signing secret: 'whsec_' + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value 'v1,<base64 HMAC-SHA256>' over '{id}.{timestamp}.{body}'."""
    key = _secret_key(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def deliver(
    url: str,
    body: bytes,
    *,
    secret: str,
    msg_id: str,
    timestamp: int,
    allow: AllowList,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> Attempt:
    """POST one signed message; network failures become Attempt(status=None, error=...)."""
    started = time.monotonic()

    def attempt(status: int | None, error: str | None, permanent: bool = False) -> Attempt:
        return Attempt(status, error, int((time.monotonic() - started) * 1000), permanent)

    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    try:
        target, ips = check_target(url, allow, HTTP_SCHEMES)  # again at delivery: DNS may have changed
    except UnsafeTarget as exc:
        return attempt(None, str(exc), permanent=True)
    except NetError as exc:
        return attempt(None, str(exc))
    client = open_client(transport, deadline=timeout)  # the timeout bounds the whole attempt
    try:
        response = send_pinned(
            client,
            "POST",
            target,
            ips,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(timeout),
        )
        response.close()  # the receiver's body is never used; only its status counts
    except httpx.TimeoutException:
        return attempt(None, f"timed out after {timeout:g} s")
    except httpx.ConnectError as exc:
        if _refused(exc):
            return attempt(None, f"connection refused by {target.hostport}")
        return attempt(None, str(describe_http_error(exc, target)))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return attempt(None, str(describe_http_error(exc, target)))
    finally:
        if transport is None:
            client.close()
    status = response.status_code
    log.debug("webhook %s to %s: HTTP %d", msg_id, target.display, status)
    if 200 <= status < 300:
        return attempt(status, None)
    if 300 <= status < 400:
        return attempt(status, f"receiver returned HTTP {status}; redirects are not followed")
    return attempt(status, f"receiver returned HTTP {status}")


def backoff_schedule(text: str) -> tuple[float, ...]:
    """Parse '5s,5m,30m,2h,5h,10h,10h' into seconds; a bare number is seconds; bad text raises."""
    steps = [step.strip().lower() for step in text.split(",")]
    delays: list[float] = []
    for step in steps:
        match = _STEP.match(step)
        if match is None:
            raise ValueError(
                f"bad retry schedule step {step!r} in {text!r}; write steps like 5s,5m,2h"
            )
        delays.append(float(match.group(1)) * _UNITS[match.group(2) or "s"])
    return tuple(delays)


def next_delay(
    schedule: tuple[float, ...],
    attempt: int,
    *,
    jitter: float = 0.1,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds before retry `attempt` (1-based) with +/- jitter; None once the schedule is spent."""
    if attempt < 1:
        raise ValueError(f"retry numbers start at 1, got {attempt}")
    if attempt > len(schedule):
        return None
    # Jitter spreads retries of many failed deliveries so they do not hit a receiver at once.
    return max(0.0, schedule[attempt - 1] * (1 + jitter * (2 * rand() - 1)))


def _secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of a 'whsec_' secret, decoded."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Padding is re-added the way the reference library does, so unpadded secrets work.
        key = base64.b64decode(encoded + "==")
    except binascii.Error:
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _refused(exc: BaseException) -> bool:
    """Whether a connect error was the receiver actively refusing (nothing listening)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
