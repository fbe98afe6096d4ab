"""Credential rotation per dialect, from the CLI and the operator route: the new credentials work,
the old ones are a 401 at once or once the grace period has passed, identifiers and other dialects
stay as they were."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.ops import issue_operator_token
from app.tenants import hash_secret, rotate_credentials
from events import catalog
from events.db import read_tx, write_tx
from events.tables import retired_credentials
from tests.support import Harness, contacts, write_csv

Creds = dict[str, Any]
BATCH = str(uuid.uuid4())
JOB = str(uuid.uuid4())


def _cli(env: Mapping[str, str], *args: str) -> Any:
    from typer.testing import CliRunner

    from app.cli import cli

    return CliRunner().invoke(cli, list(args), env=dict(env))


def _headers(dialect: str, creds: Creds) -> dict[str, str]:
    c = creds[dialect]
    if dialect == "native":
        return {"Authorization": f"Bearer {c['token']}"}
    if dialect == "admin":
        return {"Authorization": f"Bearer {c['bearer_token']}"}
    if dialect == "yesmail":
        return {"Api-User": c["api_user"], "Api-Key": c["api_key"]}
    if dialect == "thalamus":
        return {"Thalamus-Touchpoint": c["touchpoint"], "Thalamus-Token": c["token"]}
    return {"tenant": c["tenant"], "Ocp-Apim-Subscription-Key": c["subscription_key"], "Authorization": f"Bearer {c['bearer_token']}"}


# One authenticated request per dialect, and what it answers when the credentials are good.
PROBES: dict[str, tuple[str, int]] = {
    "native": ("/datasets/contacts", 200),
    "yesmail": ("/v2/reference-data/contacts?view=schema", 200),
    "thalamus": ("/api/v4/import/status/999999", 404),
    "teamtracks": (f"/job/{JOB}", 404),
    "admin": (f"/api/adm/import/entries?batchId={BATCH}", 404),
}


def probe(h: Harness, dialect: str, creds: Creds) -> int:
    path, _ = PROBES[dialect]
    return int(h.client.get(path, headers=_headers(dialect, creds)).status_code)


def works(h: Harness, dialect: str, creds: Creds) -> bool:
    status = probe(h, dialect, creds)
    assert status in (PROBES[dialect][1], 401), (dialect, status)
    return status != 401


def env_of(h: Harness) -> dict[str, str]:
    return {"IMPORTER_DATABASE_URL": h.settings.database_url, "IMPORTER_DATA_DIR": str(h.tmp / "data")}


def test_rotate_each_dialect_from_the_cli_old_is_401_new_works(embedded: Harness) -> None:
    old = embedded.tenant("acme")
    embedded.dataset("acme")
    for dialect in PROBES:
        assert works(embedded, dialect, old), dialect
    current = dict(old)
    for dialect in PROBES:
        result = _cli(env_of(embedded), "tenants", "rotate", "acme", "--dialect", dialect, "--json")
        assert result.exit_code == 0, result.output
        rotated = json.loads(result.stdout)
        assert list(rotated) == ["tenant", dialect, "previous_valid_until"] and rotated["tenant"] == "acme"
        assert rotated["previous_valid_until"] is None
        assert list(rotated[dialect]) == list(old[dialect])  # printed the way `tenants create --json` prints them
        for key, value in rotated[dialect].items():
            is_ident = key in ("api_user", "touchpoint", "tenant")
            assert (value == old[dialect][key]) is is_ident, (dialect, key)  # identifiers stay, secrets change
        assert not works(embedded, dialect, current), dialect
        current[dialect] = rotated[dialect]
        assert works(embedded, dialect, current), dialect
        for other in PROBES:  # the other dialects are untouched
            assert works(embedded, other, current), (dialect, other)


def test_teamtracks_needs_both_new_halves(embedded: Harness) -> None:
    old = embedded.tenant("acme")
    with write_tx(embedded.rt.engine) as conn:
        new = rotate_credentials(conn, "acme", "teamtracks")
    mixed = [
        {**new["teamtracks"], "subscription_key": old["teamtracks"]["subscription_key"]},
        {**new["teamtracks"], "bearer_token": old["teamtracks"]["bearer_token"]},
    ]
    for creds in mixed:
        assert probe(embedded, "teamtracks", {"teamtracks": creds}) == 401
    assert probe(embedded, "teamtracks", new) == 404


def test_the_operator_route_rotates_with_a_grace_period(embedded: Harness) -> None:
    old = embedded.tenant("acme")
    embedded.dataset("acme")
    with write_tx(embedded.rt.engine) as conn:
        ops = {"Authorization": f"Bearer {issue_operator_token(conn)}"}
    url = "/ops/tenants/acme/credentials/yesmail/rotate"
    assert embedded.client.post(url).status_code == 401
    assert embedded.client.post(url, headers=_headers("native", old)).status_code == 401  # a tenant's token is no operator's
    resp = embedded.client.post(f"{url}?grace=2", headers=ops)
    assert resp.status_code == 200, resp.text
    rotated = resp.json()
    assert list(rotated) == ["tenant", "yesmail", "previous_valid_until"]
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    # Within the grace period both keys work...
    assert works(embedded, "yesmail", old) and works(embedded, "yesmail", rotated)
    # ...and once it has passed only the new one does (waiting on the clock, with a bound).
    deadline = time.monotonic() + 15
    while works(embedded, "yesmail", old):
        assert time.monotonic() < deadline, "the old key still works long after its grace period"
        time.sleep(0.1)
    assert datetime.now(until.tzinfo) >= until
    assert works(embedded, "yesmail", rotated)


def test_grace_expiry_is_decided_by_the_stored_time(embedded: Harness) -> None:
    old = embedded.tenant("acme")
    embedded.dataset("acme")
    with write_tx(embedded.rt.engine) as conn:
        rotated = rotate_credentials(conn, "acme", "native", grace=3600)
    assert works(embedded, "native", old) and works(embedded, "native", rotated)
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    digest = hash_secret(old["native"]["token"])
    with read_tx(embedded.rt.engine) as conn:
        assert catalog.tenant_by_secret(conn, "native", digest, until - timedelta(seconds=1)) is not None
        assert catalog.tenant_by_secret(conn, "native", digest, until) is None
    # a later rotation drops retired secrets whose time has passed, and keeps the rest
    with write_tx(embedded.rt.engine) as conn:
        tenant = catalog.tenant_by_name(conn, "acme")
        assert tenant is not None
        catalog.rotate_credential(conn, tenant.id, "native", hash_secret("x"), at=until + timedelta(seconds=1), keep_old_until=None)
    with read_tx(embedded.rt.engine) as conn:
        assert catalog.tenant_by_secret(conn, "native", digest, until - timedelta(seconds=1)) is None


def test_rotation_refusals(embedded: Harness) -> None:
    embedded.tenant("acme")
    with write_tx(embedded.rt.engine) as conn:
        ops = {"Authorization": f"Bearer {issue_operator_token(conn)}"}
    post: Callable[[str], Any] = lambda path: embedded.client.post(path, headers=ops)  # noqa: E731
    for path, status in (
        ("/ops/tenants/nobody/credentials/native/rotate", 404),
        ("/ops/tenants/__ops__/credentials/native/rotate", 404),  # the operator's own tenant is not one
        ("/ops/tenants/acme/credentials/fax/rotate", 400),
        ("/ops/tenants/acme/credentials/native/rotate?grace=-1", 400),
        ("/ops/tenants/acme/credentials/native/rotate?grace=soon", 400),
    ):
        resp = post(path)
        assert resp.status_code == status, (path, resp.text)
        assert list(resp.json()) == ["error"]
    env = env_of(embedded)
    for args in (["nobody", "--dialect", "native"], ["acme", "--dialect", "fax"]):
        result = _cli(env, "tenants", "rotate", *args)
        assert result.exit_code == 1 and "error:" in result.output, result.output
    table = _cli(env, "tenants", "rotate", "acme", "--dialect", "admin", "--grace", "60")
    assert table.exit_code == 0 and "bearer_token=adm_" in table.stdout
    assert "the previous ones work until" in " ".join(table.stdout.split())


def test_status_polls_check_the_token_on_every_request(embedded: Harness, tmp_path: Path) -> None:
    """GET /imports/{id} checks its token in its own look-up rather than through the `tenant`
    dependency: a poller loses access the moment a rotation commits, from the CLI (another engine)
    as from this process, and a rotated token polls for its grace period and not a request longer."""
    old = embedded.tenant("acme")
    embedded.dataset("acme")
    path = write_csv(tmp_path / "a.csv", contacts(3))
    ticket = embedded.upload(old["native"]["token"], path, dataset="contacts").json()["id"]

    def poll(creds: Creds) -> Any:
        return embedded.client.get(f"/imports/{ticket}", headers=_headers("native", creds))

    for _ in range(20):  # a run of polls, as a client makes them, before the rotation
        assert poll(old).status_code == 200
    result = _cli(env_of(embedded), "tenants", "rotate", "acme", "--dialect", "native", "--json")
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)
    refused = poll(old)
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "invalid bearer token", refused.text
    assert poll(rotated).json()["id"] == ticket

    with write_tx(embedded.rt.engine) as conn:  # rotated again: `rotated` is now in a grace period
        graced = rotate_credentials(conn, "acme", "native", grace=3600)
    assert poll(rotated).status_code == 200 and poll(graced).status_code == 200
    with write_tx(embedded.rt.engine) as conn:  # the grace period ends (its stored time passes)
        conn.execute(retired_credentials.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert poll(rotated).status_code == 401
    assert poll(graced).json()["id"] == ticket
