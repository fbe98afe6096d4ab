"""The API's one exception base: each carries an HTTP status, a stable code and a sentence."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from litestar import Request
from litestar.exceptions import HTTPException

logger = logging.getLogger("importer.app")


class ApiError(Exception):
    """A request the service refuses; dialects render it in their own error shape."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """A dependency (the blob store) is down: nothing was accepted; the caller may retry."""

    status, code = 503, "unavailable"
    retry_after = 5


class Failure(NamedTuple):
    """Any exception a request handler raised, reduced to what every dialect's error body needs."""

    status: int
    message: str
    code: str  # ApiError.code, "http_<status>" for framework refusals, "internal_error"
    field: str | None = None
    headers: dict[str, str] | None = None  # Retry-After on 429, and whatever the framework set
    extra: Any = None  # the framework's validation details (a list of {"key", "message"})
    error: ApiError | None = None


def validation_text(extra: Any) -> str:
    """The framework's validation details as one line: "key: message; key: message"."""
    return "; ".join(f"{e.get('key')}: {e.get('message')}" for e in (extra or []) if isinstance(e, dict))


def classify(exc: Exception, request: Request[Any, Any, Any], *, too_large: str) -> Failure:
    """One reading of an exception for every error renderer (native and each dialect).

    `too_large` is the dialect's sentence for a body over the upload limit. Anything that is
    neither an ApiError nor a framework HTTPException is logged with its traceback and becomes a
    500 whose message says the request was not processed.
    """
    if isinstance(exc, ApiError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests | Unavailable) else None
        return Failure(exc.status, exc.message, exc.code, exc.field, headers, None, exc)
    if isinstance(exc, HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc)
        if exc.status_code == 413:
            message = too_large
        return Failure(exc.status_code, message, f"http_{exc.status_code}", None, exc.headers or None, exc.extra)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return Failure(500, "internal error; the request was not processed", "internal_error")
