"""Callback targets and source URIs get the SSRF guard's verdict at submission (a 400 in each front
door's own shape), and again at delivery, where a refusal abandons the callback at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.net import AllowList
from events import catalog
from events.db import read_tx
from tests.support import Harness, contacts, write_csv
from tests.support.net_servers import serving

PUBLIC_SOURCE = "http://93.184.216.34/contacts.csv"  # a public literal: passes the guard without DNS
REFUSED = {
    "http://127.0.0.1:9/hook": "loopback",
    "http://localhost:8080/hook": "resolves to",  # a name: refused for what it resolves to
    "http://[::1]/hook": "loopback",
    "http://10.1.2.3/hook": "private",
    "http://192.168.0.7/hook": "private",
    "http://169.254.169.254/latest/meta-data/": "cloud metadata",
    "http://0.0.0.0/hook": "unspecified",
    "ftp://93.184.216.34/hook": "scheme ftp is not allowed",
    "file:///etc/passwd": "scheme file is not allowed",
    "not a url": "whitespace",
}


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Harness]:
    """The embedded service with no IMPORTER_ALLOWED_HOSTS: nothing local may be reached."""
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'importer.db'}", allowed_hosts="")
    try:
        yield h
    finally:
        h.stop()


def tickets(h: Harness) -> list[int]:
    with read_tx(h.rt.engine) as conn:
        return catalog.list_ticket_ids(conn)


def yesmail_error(resp: Any) -> str:
    """Yesmail's error shape, status 400."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert list(body) == ["error"] and list(body["error"]) == ["status", "message"] and body["error"]["status"] == 400
    return str(body["error"]["message"])


def native_error(resp: Any, field: str) -> str:
    """The native error shape, status 400, naming the field."""
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_uri", field)
    return str(error["message"])


def test_yesmail_refuses_a_response_uri_the_guard_refuses(guarded: Harness) -> None:
    creds = guarded.tenant()
    guarded.dataset("acme")
    headers = {"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]}
    for target, reason in REFUSED.items():
        resp = guarded.client.post(
            "/v2/reference-data/contacts/records/file-import", params={"responseUri": target},
            json={"source": {"uri": PUBLIC_SOURCE, "headers": True}}, headers=headers,
        )
        message = yesmail_error(resp)
        assert message.startswith("responseUri refused") and reason in message, (target, message)
    assert tickets(guarded) == []


def test_native_refuses_a_callback_url_the_guard_refuses_as_json_and_multipart(guarded: Harness, tmp_path: Path) -> None:
    creds = guarded.tenant()
    guarded.dataset("acme")
    token = creds["native"]["token"]
    path = write_csv(tmp_path / "a.csv", contacts(2))
    for target, reason in REFUSED.items():
        as_json = guarded.client.post(
            "/imports", json={"dataset": "contacts", "uri": PUBLIC_SOURCE, "callback_url": target},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reason in native_error(as_json, "callback_url"), target
        upload = guarded.upload(token, path, dataset="contacts", callback_url=target)
        assert reason in native_error(upload, "callback_url"), target
    assert tickets(guarded) == []
    data = guarded.tmp / "data"
    assert [p for p in data.rglob("*") if p.is_file() and p.parent.name in ("tmp", "sources")] == []  # nothing left behind


def test_a_source_uri_naming_loopback_is_refused_at_submission_too(guarded: Harness) -> None:
    creds = guarded.tenant()
    guarded.dataset("acme")
    for uri in ("http://localhost/contacts.csv", "http://127.0.0.1:9/contacts.csv", "ftp://10.0.0.1/c.csv"):
        resp = guarded.client.post(
            "/imports", json={"dataset": "contacts", "uri": uri},
            headers={"Authorization": f"Bearer {creds['native']['token']}"},
        )
        assert native_error(resp, "uri").startswith("refused:"), uri
        ym = guarded.client.post(
            "/v2/reference-data/contacts/records/file-import", json={"source": {"uri": uri}},
            headers={"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]},
        )
        assert "refused" in yesmail_error(ym), uri
    assert tickets(guarded) == []


def test_allowed_hosts_let_a_local_receiver_through(embedded: Harness, tmp_path: Path) -> None:
    creds = embedded.tenant()
    embedded.dataset("acme")
    with serving() as receiver:
        resp = embedded.upload(
            creds["native"]["token"], write_csv(tmp_path / "a.csv", contacts(2)), dataset="contacts",
            callback_url=f"http://localhost:{receiver.port}/hook",
        )
        assert resp.status_code == 202, resp.text
        view = embedded.wait(resp.json()["id"], until="settled")
        assert view.webhook.delivered_at is not None and [r.path for r in receiver.requests] == ["/hook"]


def test_a_target_refused_at_delivery_is_abandoned_at_once_with_the_reason(embedded: Harness, tmp_path: Path) -> None:
    creds = embedded.tenant()
    embedded.dataset("acme")
    with serving() as receiver:
        embedded.worker.worker.pause()  # accepted while the guard allows it; refused by the time it is sent
        try:
            resp = embedded.upload(
                creds["native"]["token"], write_csv(tmp_path / "a.csv", contacts(2)), dataset="contacts",
                callback_url=f"http://127.0.0.1:{receiver.port}/hook",
            )
            assert resp.status_code == 202, resp.text
            embedded.rt.allow = AllowList()  # as if the name now resolved to a refused address
        finally:
            embedded.worker.worker.resume()
        ticket = resp.json()["id"]
        view = embedded.wait(ticket, until="settled")
        assert receiver.requests == []
    assert view.state == "completed" and view.webhook.abandoned and view.webhook.attempts == 1
    assert view.webhook.delivered_at is None and "loopback" in (view.webhook.last_error or "")
    events = embedded.client.get(f"/imports/{ticket}/events", headers={"Authorization": f"Bearer {creds['native']['token']}"}).json()
    abandoned = [e for e in events["events"] if e["type"] == "webhook_abandoned"]
    assert len(abandoned) == 1 and abandoned[0]["attempts"] == 1 and "IMPORTER_ALLOWED_HOSTS" in abandoned[0]["reason"]
    shown = embedded.client.get(f"/imports/{ticket}", headers={"Authorization": f"Bearer {creds['native']['token']}"}).json()
    assert shown["webhook"]["abandoned"] is True and "loopback" in shown["webhook"]["last_error"]
