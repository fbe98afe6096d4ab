"""Tenants and their credentials: creation (secrets shown once, stored hashed) and lookups."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

import sqlalchemy as sa

from app.names import identifier_problem
from events.catalog import TenantRow, get_tenant, tenant_by_name
from events.log import now
from events.tables import credentials, tenants

DIALECTS = ("native", "yesmail", "thalamus", "teamtracks", "admin")


def hash_secret(secret: str) -> str:
    """sha256 hex of a high-entropy secret (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _add(conn: sa.Connection, tenant_id: int, dialect: str, ident: str | None, secret: str) -> None:
    conn.execute(
        credentials.insert().values(tenant_id=tenant_id, dialect=dialect, ident=ident, secret_hash=hash_secret(secret))
    )


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
    native = _token("imp")
    api_user, api_key = f"{name}-{secrets.token_hex(4)}", _token("ymk")
    touchpoint, thal_token = f"tp-{secrets.token_hex(6)}", _token("tht")
    tt_tenant, tt_key, tt_bearer = str(uuid.uuid4()), secrets.token_hex(16), _token("ttb")
    admin = _token("adm")
    _add(conn, tenant_id, "native", None, native)
    _add(conn, tenant_id, "yesmail", api_user, api_key)
    _add(conn, tenant_id, "thalamus", touchpoint, thal_token)
    _add(conn, tenant_id, "teamtracks", tt_tenant, tt_key)
    _add(conn, tenant_id, "teamtracks-bearer", tt_tenant, tt_bearer)
    _add(conn, tenant_id, "admin", None, admin)
    return {
        "tenant": name,
        "native": {"token": native},
        "yesmail": {"api_user": api_user, "api_key": api_key},
        "thalamus": {"touchpoint": touchpoint, "token": thal_token},
        "teamtracks": {"tenant": tt_tenant, "subscription_key": tt_key, "bearer_token": tt_bearer},
        "admin": {"bearer_token": admin},
        "webhook_secret": webhook_secret,
    }


def rotate_webhook_secret(conn: sa.Connection, tenant_id: int) -> str:
    """Replace a tenant's webhook signing secret; returns the new one."""
    secret = new_webhook_secret()
    conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(webhook_secret=secret))
    return secret


def tenant_by_token(conn: sa.Connection, dialect: str, token: str) -> TenantRow | None:
    """The tenant owning a bearer-style secret of this dialect."""
    digest = hash_secret(token)
    row = conn.execute(
        sa.select(credentials.c.tenant_id, credentials.c.secret_hash).where(
            credentials.c.dialect == dialect, credentials.c.secret_hash == digest
        )
    ).first()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    return get_tenant(conn, int(row[0]))


def tenant_by_ident(conn: sa.Connection, dialect: str, ident: str) -> tuple[TenantRow, str] | None:
    """The tenant holding a public identifier of this dialect, with the stored secret hash."""
    row = conn.execute(
        sa.select(credentials.c.tenant_id, credentials.c.secret_hash).where(
            credentials.c.dialect == dialect, credentials.c.ident == ident
        )
    ).first()
    if row is None:
        return None
    tenant = get_tenant(conn, int(row[0]))
    return (tenant, str(row[1])) if tenant else None


def check_pair(conn: sa.Connection, dialect: str, ident: str, secret: str) -> TenantRow | None:
    """The tenant when ident and secret match (constant-time on the secret)."""
    found = tenant_by_ident(conn, dialect, ident)
    if found is None:
        hmac.compare_digest(hash_secret(secret), hash_secret("x"))  # same work either way
        return None
    tenant, stored = found
    return tenant if hmac.compare_digest(stored, hash_secret(secret)) else None
