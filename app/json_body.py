"""Small JSON request bodies: credentials first, then a size cap and a nesting bound, before any decoding."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException

from app.concurrency import in_thread
from app.errors import BadRequest, TooLarge

JSON_BODY_LIMIT = 64 * 1024  # a dataset schema, an import request: a few KB; set per route as its body limit
MAX_DEPTH = 32  # the deepest real body (a schema's field options) nests 4 levels
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def too_large(limit: int = JSON_BODY_LIMIT) -> TooLarge:
    """The refusal of a JSON body over the limit."""
    return TooLarge(f"the JSON body is larger than {limit // 1024} KB", code="too_large")


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` (a recursive decoder would otherwise run out of stack)."""
    depth = 0
    for mark in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
        depth += 1 if mark in b"[{" else -1
        if depth > limit:
            raise BadRequest(f"the JSON body nests deeper than {limit} levels")


async def small_body(request: Request[Any, Any, Any], limit: int = JSON_BODY_LIMIT) -> bytes:
    """The whole body, refused with 413 past `limit`: by Content-Length before reading, else as it streams."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    if request.route_handler.resolve_request_max_body_size() == limit:
        try:  # the route's own limit stops the stream; the body stays cached for the handler's `data`
            return await request.body()
        except HTTPException as exc:
            if exc.status_code == 413:
                raise too_large(limit) from None
            raise
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def auth_then_json(authenticate: Callable[[Request[Any, Any, Any]], object]) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A before_request hook for a JSON route: 401 before the body is read, then 413 / 400 for a body
    too large or too deep, all before the framework decodes it (set request_max_body_size=JSON_BODY_LIMIT)."""

    async def before(request: Request[Any, Any, Any]) -> None:
        await in_thread(authenticate, request)
        check_depth(await small_body(request))

    return before
