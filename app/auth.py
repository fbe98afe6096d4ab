"""Reading credentials off requests; each dialect turns a failure into its own 401 shape."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Request

from actors.runtime import Runtime
from app.errors import Unauthorized
from app.tenants import check_pair, tenant_by_token
from events.catalog import TenantRow
from events.db import read_tx


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    """The process's runtime, stored on the app at start-up."""
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def by_token(rt: Runtime, dialect: str, token: str | None) -> TenantRow | None:
    """The tenant of a bearer-style secret."""
    if not token:
        return None
    with read_tx(rt.engine) as conn:
        return tenant_by_token(conn, dialect, token)


def by_pair(rt: Runtime, dialect: str, ident: str | None, secret: str | None) -> TenantRow | None:
    """The tenant of an identifier + secret pair."""
    if not ident or not secret:
        return None
    with read_tx(rt.engine) as conn:
        return check_pair(conn, dialect, ident, secret)


def native_token(request: Request[Any, Any, Any]) -> str:
    """The native API's credential, `Authorization: Bearer <token>`, not yet checked (401 when absent)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>'")
    return token


def native_tenant_in(conn: sa.Connection, token: str) -> TenantRow:
    """The tenant of a native token, checked in the caller's transaction (401 when it is not valid now)."""
    tenant = tenant_by_token(conn, "native", token)
    if tenant is None:
        raise Unauthorized("invalid bearer token")
    return tenant


def native_tenant(request: Request[Any, Any, Any]) -> TenantRow:
    """Native API auth: `Authorization: Bearer <token>`."""
    token = native_token(request)
    with read_tx(runtime(request).engine) as conn:
        return native_tenant_in(conn, token)
