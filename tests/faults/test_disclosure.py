"""What the service must not show: callback credentials, server paths, what internal names resolve
to, and names that render as something else (control, bidi and look-alike characters)."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from app.ops import issue_operator_token
from app.tenants import create_tenant
from events import catalog
from events.db import read_tx, write_tx
from events.export import export_log
from tests.support import Harness, contacts, receiver, upgrade_to, write_csv

SECRET, TOKEN = "s3cr3t-pass", "tok-9f8e7d"


@pytest.fixture
def svc(embedded: Harness) -> Harness:
    """The embedded service (SQLite + in-process worker), one per test."""
    return embedded


def _everything_shown(h: Harness, ticket: int, native: dict[str, str], operator: dict[str, str]) -> str:
    """Every place a ticket's callback URL can surface: the log's routes, the views and an export."""
    shown = [
        h.client.get(f"/imports/{ticket}", headers=native).text,
        h.client.get(f"/imports/{ticket}/events", headers=native).text,
        h.client.get(f"/ops/imports/{ticket}/events", headers=operator).text,
        h.client.get(f"/ops/imports/{ticket}/view", headers=operator).text,
    ]
    out = io.BytesIO()
    with read_tx(h.rt.engine) as conn:
        export_log(conn, out.write)
    shown.append(out.getvalue().decode())
    return "\n".join(shown)


def test_callback_credentials_stay_out_of_the_log_views_and_exports_but_reach_the_receiver(svc: Harness, tmp_path: Path) -> None:
    creds = svc.tenant("acme")
    svc.dataset("acme")
    with write_tx(svc.rt.engine) as conn:
        operator = {"Authorization": f"Bearer {issue_operator_token(conn)}"}
    native = {"Authorization": f"Bearer {creds['native']['token']}"}
    with receiver() as hooks:
        callback = hooks.url.replace("http://", f"http://user:{SECRET}@") + f"?token={TOKEN}&ref=7"
        resp = svc.upload(creds["native"]["token"], write_csv(tmp_path / "c.csv", contacts(3)), dataset="contacts", callback_url=callback)
        assert resp.status_code == 202, resp.text
        ticket = resp.json()["id"]
        view = svc.wait(ticket, until="settled")
        assert view.webhook.delivered_at is not None
        [(path, headers, _)] = hooks.posts
    # The delivery used the secret form: the credentials as Basic auth, the token in the query.
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert path == f"/hook?token={TOKEN}&ref=7"
    shown = _everything_shown(svc, ticket, native, operator)
    assert SECRET not in shown and TOKEN not in shown
    assert "user:***@" in shown and "token=***&ref=7" in shown  # the redacted form is what is shown


def test_yesmail_response_uri_credentials_are_redacted_in_its_ticket(svc: Harness) -> None:
    creds = svc.tenant("acme")
    svc.dataset("acme")
    ym = {"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]}
    callback = f"http://user:{SECRET}@127.0.0.1:9/hook?token={TOKEN}"
    resp = svc.client.post(
        "/v2/reference-data/contacts/records/file-import", params={"responseUri": callback},
        json={"source": {"uri": "http://127.0.0.1:9/file.csv", "headers": True}}, headers=ym,
    )
    assert resp.status_code == 202, resp.text
    ticket = svc.client.get(resp.headers["Content-Location"], headers=ym).text
    assert SECRET not in ticket and TOKEN not in ticket and "user:***@" in ticket
    with read_tx(svc.rt.engine) as conn:  # kept outside the log, for the delivery
        row = catalog.get_ticket(conn, int(resp.json()["id"]))
    assert row is not None and row.secret_callback == callback


def test_the_admin_result_route_does_not_show_the_server_path_of_a_removed_file(svc: Harness, tmp_path: Path) -> None:
    creds = svc.tenant("acme")
    svc.dataset("acme", "transactions")
    auth = {"Authorization": f"Bearer {creds['admin']['bearer_token']}"}
    batch = svc.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=auth).json()["batchId"]
    path = write_csv(tmp_path / "t.csv", contacts(3))
    with path.open("rb") as fh:
        up = svc.client.post("/api/adm/import/file", params={"batchId": batch}, files={"file": ("t.csv", fh)}, headers=auth)
    assert up.status_code == 200, up.text
    view = svc.wait(svc.batch_ticket("acme", batch))
    assert view.file is not None
    blob = svc.rt.blobs.path(view.file.blob)
    blob.unlink()  # an operator cleaned the blob folder
    resp = svc.client.get("/api/adm/import/result", params={"batchId": batch}, headers=auth)
    assert resp.status_code == 400
    body = resp.json()
    assert "no longer stored" in body["errorMessage"]
    assert str(svc.rt.blobs.root) not in resp.text and "sources/" not in resp.text and "/tmp" not in resp.text


def test_an_ssrf_refusal_does_not_say_what_an_internal_name_resolves_to(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'importer.db'}", allowed_hosts="")
    try:
        creds = h.tenant("acme")
        h.dataset("acme")
        auth = {"Authorization": f"Bearer {creds['native']['token']}"}
        with caplog.at_level(logging.WARNING, logger="actors.net.ssrf"):  # refused at submission (app/urls.py)
            resp = h.client.post("/imports", json={"dataset": "contacts", "uri": "http://localhost:9/internal.csv"}, headers=auth)
    finally:
        h.stop()
    assert resp.status_code == 400 and "resolves to a non-public address" in resp.json()["error"]["message"], resp.text
    assert "127.0.0.1" not in resp.text and "::1" not in resp.text and "loopback" not in resp.text
    assert "localhost: it resolves to" in caplog.text  # the detail is for the operator


BAD_NAMES = ["a\u202eb", "nul\x00l", "tab\tname", "zero\u200bwidth", "\u0430cme", "caf\u00e9", "..", "a b", "x" * 201, ""]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_dataset_and_tenant_names_are_ascii_identifiers(svc: Harness, name: str) -> None:
    creds = svc.tenant(f"t{abs(hash(name)) % 10**8}")
    auth = {"Authorization": f"Bearer {creds['native']['token']}"}
    schema = {"fields": [{"name": "email", "type": "email"}], "key": ["email"]}
    if name:  # an empty path segment is another route
        resp = svc.client.put(f"/datasets/{quote(name, safe='')}", json=schema, headers=auth)
        assert resp.status_code in (400, 404, 405), resp.text  # ".." is normalised away: another route
        if resp.status_code == 400:
            assert resp.json()["error"]["field"] == "name" and "ASCII letters" in resp.json()["error"]["message"]
    with write_tx(svc.rt.engine) as conn, pytest.raises(ValueError, match="ASCII letters"):
        create_tenant(conn, name)


@pytest.mark.parametrize("name", ["a\u202eb", "nul\x00l", "line\u2028sep", "zero\u200bwidth", "priv\ue000"], ids=repr)
def test_thalamus_import_names_refuse_control_bidi_and_invisible_characters(svc: Harness, name: str, tmp_path: Path) -> None:
    creds = svc.tenant("acme")
    svc.dataset("acme", "partner_sales")
    t = {"Thalamus-Touchpoint": creds["thalamus"]["touchpoint"], "Thalamus-Token": creds["thalamus"]["token"]}
    path = write_csv(tmp_path / "p.csv", contacts(2))
    with path.open("rb") as fh:
        resp = svc.client.post("/api/v4/import/file", data={"name": name, "type": "25011"}, files={"file": ("p.csv", fh)}, headers=t)
    assert resp.status_code == 400, resp.text
    assert resp.json()["errors"]["name"] == "InvalidName"


def test_thalamus_import_names_may_use_any_script(svc: Harness, tmp_path: Path) -> None:
    creds = svc.tenant("acme")
    svc.dataset("acme", "partner_sales")
    t = {"Thalamus-Touchpoint": creds["thalamus"]["touchpoint"], "Thalamus-Token": creds["thalamus"]["token"]}
    path = write_csv(tmp_path / "p.csv", contacts(2))
    with path.open("rb") as fh:
        resp: Any = svc.client.post("/api/v4/import/file", data={"name": "Импорт 2024 café", "type": "25011"}, files={"file": ("p.csv", fh)}, headers=t)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_database_from_before_secret_callback_gains_the_column_by_migration_0004(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A database at revision 0003 (a tenant in it) is upgraded at start: 0004 adds the column, the data stays."""
    import sqlalchemy as sa

    from events import migrations
    from events.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else str(request.getfixturevalue("pg_schema_url"))
    engine = make_engine(url, upgrade=False)
    try:
        with write_tx(engine) as conn:
            upgrade_to(conn, "0003")
            create_tenant(conn, "acme")  # a row written before the upgrade
        with engine.connect() as conn:
            assert "secret_callback" not in {c["name"] for c in sa.inspect(conn).get_columns("tickets")}
        assert migrations.upgrade(engine) == ("0003", migrations.head())
        with engine.connect() as conn:
            assert "secret_callback" in {c["name"] for c in sa.inspect(conn).get_columns("tickets")}
        with read_tx(engine) as conn:
            assert catalog.tenant_by_name(conn, "acme") is not None
    finally:
        engine.dispose()
