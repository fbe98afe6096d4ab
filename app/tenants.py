"""Tenants and their credentials: creation (secrets shown once, stored hashed) and lookups."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.names import identifier_problem
from events import catalog
from events.catalog import TenantRow, get_tenant, tenant_by_name
from events.log import now
from events.tables import tenants

DIALECTS = ("native", "yesmail", "thalamus", "teamtracks", "admin")
# Per dialect: its credential rows (the row's dialect, the name its secret is shown under, a new
# secret) and the name the public identifier they share is shown under, if they have one.
_SECRETS: dict[str, tuple[tuple[str, str, Callable[[], str]], ...]] = {
    "native": (("native", "token", lambda: _token("imp")),),
    "yesmail": (("yesmail", "api_key", lambda: _token("ymk")),),
    "thalamus": (("thalamus", "token", lambda: _token("tht")),),
    "teamtracks": (
        ("teamtracks", "subscription_key", lambda: secrets.token_hex(16)),
        ("teamtracks-bearer", "bearer_token", lambda: _token("ttb")),
    ),
    "admin": (("admin", "bearer_token", lambda: _token("adm")),),
}
_IDENTS = {"yesmail": "api_user", "thalamus": "touchpoint", "teamtracks": "tenant"}


def hash_secret(secret: str) -> str:
    """sha256 hex of a high-entropy secret (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_tenant(conn: sa.Connection, name: str) -> dict[str, Any]:
    """Create a tenant with one credential per dialect; returns them (the only time secrets are shown)."""
    if (problem := identifier_problem(name)) is not None:
        raise ValueError(f"tenant {problem}")
    if name.startswith("__"):
        raise ValueError(f"tenant name {name!r} is reserved: names starting with '__' belong to the service")
    if tenant_by_name(conn, name) is not None:
        raise ValueError(f"tenant {name!r} already exists")
    webhook_secret = new_webhook_secret()
    inserted = conn.execute(
        tenants.insert().values(name=name, webhook_secret=webhook_secret, created_at=now())
    ).inserted_primary_key
    assert inserted is not None
    tenant_id = int(inserted[0])
    idents = {"yesmail": f"{name}-{secrets.token_hex(4)}", "thalamus": f"tp-{secrets.token_hex(6)}", "teamtracks": str(uuid.uuid4())}
    out: dict[str, Any] = {"tenant": name}
    for dialect in DIALECTS:
        ident = idents.get(dialect)
        block = {_IDENTS[dialect]: ident} if ident else {}
        for row_dialect, shown, make in _SECRETS[dialect]:
            block[shown] = make()
            catalog.add_credential(conn, tenant_id, row_dialect, ident, hash_secret(block[shown]))
        out[dialect] = block
    out["webhook_secret"] = webhook_secret
    return out


def rotate_credentials(conn: sa.Connection, name: str, dialect: str, grace: float = 0) -> dict[str, Any]:
    """New secrets for one dialect of a tenant (identifiers stay), shown once like create_tenant's;
    the old ones stop at once, or `grace` seconds from now. LookupError: no such tenant or credential."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    if not grace >= 0:
        raise ValueError(f"the grace period is a number of seconds, 0 or more; got {grace!r}")
    tenant = tenant_by_name(conn, name) if not name.startswith("__") else None
    if tenant is None:
        raise LookupError(f"no tenant named {name!r}")
    at = now()
    until = at + timedelta(seconds=grace) if grace else None
    block: dict[str, Any] = {}
    for row_dialect, shown, make in _SECRETS[dialect]:
        secret = make()
        idents = catalog.rotate_credential(conn, tenant.id, row_dialect, hash_secret(secret), at=at, keep_old_until=until)
        if not idents:
            raise LookupError(f"tenant {name!r} has no {dialect} credential to rotate")
        if dialect in _IDENTS:
            block.setdefault(_IDENTS[dialect], idents[0])
        block[shown] = secret
    return {"tenant": name, dialect: block, "previous_valid_until": until.isoformat() if until else None}


def rotate_webhook_secret(conn: sa.Connection, tenant_id: int) -> str:
    """Replace a tenant's webhook signing secret; returns the new one."""
    secret = new_webhook_secret()
    conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(webhook_secret=secret))
    return secret


def tenant_by_token(conn: sa.Connection, dialect: str, token: str) -> TenantRow | None:
    """The tenant owning a bearer-style secret of this dialect (or a rotated one still in its grace period)."""
    digest = hash_secret(token)
    found = catalog.tenant_by_secret(conn, dialect, digest, now())
    if found is None or not hmac.compare_digest(found[1], digest):
        return None
    return found[0]


def tenant_by_ident(conn: sa.Connection, dialect: str, ident: str) -> tuple[TenantRow, str] | None:
    """The tenant holding a public identifier of this dialect, with the stored secret hash."""
    found = catalog.credential_by_ident(conn, dialect, ident)
    if found is None:
        return None
    tenant = get_tenant(conn, found[0])
    return (tenant, found[1]) if tenant else None


def check_pair(conn: sa.Connection, dialect: str, ident: str, secret: str) -> TenantRow | None:
    """The tenant when ident and secret match (constant-time on the secret); a rotated secret
    still in its grace period matches too."""
    found = tenant_by_ident(conn, dialect, ident)
    if found is None:
        hmac.compare_digest(hash_secret(secret), hash_secret("x"))  # same work either way
        return None
    tenant, stored = found
    digest = hash_secret(secret)
    if hmac.compare_digest(stored, digest):
        return tenant
    # Looked up by its hash, like a bearer token: timing can reveal no more than the hash.
    retired = catalog.retired_credential(conn, dialect, ident, digest, now())
    return tenant if retired == tenant.id else None
