"""One file through all four dialects and the native API: the same records, and counts that agree with the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import Harness, Site, contacts, write_csv


def _rows() -> list[list[Any]]:
    rows = contacts(1200)
    rows[10][2] = "not-a-number"  # one bad row in every front door
    rows[700][0] = "not-an-email"
    return rows


def _native(h: Harness, path: Path) -> int:
    creds = h.tenant("native-co")
    h.dataset("native-co", "contacts")
    resp = h.upload(creds["native"]["token"], path, dataset="contacts")
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


def _yesmail(h: Harness, path: Path, server: Site) -> int:
    creds = h.tenant("yesmail-co")
    h.dataset("yesmail-co", "contacts")
    server.files["agree.csv"] = path.read_bytes()
    resp = h.client.post(
        "/v2/reference-data/contacts/records/file-import",
        json={"importType": "update", "source": {"headers": True, "separator": ",", "uri": server.url("/files/agree.csv")}},
        headers={"Api-User": creds["yesmail"]["api_user"], "Api-Key": creds["yesmail"]["api_key"]},
    )
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


def _thalamus(h: Harness, path: Path) -> int:
    creds = h.tenant("thalamus-co")
    h.dataset("thalamus-co", "partner_sales")
    t = creds["thalamus"]
    with path.open("rb") as fh:
        resp = h.client.post(
            f"/api/v4/import/file?name=agree&type=25011&touchpoint={t['touchpoint']}&token={t['token']}",
            files={"file": (path.name, fh)},
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body["id"], int)
    return int(body["id"])


def _teamtracks(h: Harness, path: Path) -> int:
    creds = h.tenant("teamtracks-co")
    h.dataset("teamtracks-co", "rma")
    t = creds["teamtracks"]
    with path.open("rb") as fh:
        resp = h.client.post(
            "/objectimport/rma",
            files={"file": (path.name, fh)},
            headers={"tenant": t["tenant"], "Ocp-Apim-Subscription-Key": t["subscription_key"], "Authorization": f"Bearer {t['bearer_token']}"},
        )
    assert resp.status_code == 200, resp.text
    job = resp.json()["jobId"]
    from events import catalog
    from events.db import read_tx

    with read_tx(h.rt.engine) as conn:
        tenant = catalog.tenant_by_name(conn, "teamtracks-co")
        assert tenant is not None
        row = catalog.ticket_by_uuid(conn, job, tenant.id)
    assert row is not None
    return row.id


def _admin(h: Harness, path: Path) -> int:
    creds = h.tenant("admin-co")
    h.dataset("admin-co", "transactions")
    auth = {"Authorization": f"Bearer {creds['admin']['bearer_token']}"}
    batch = h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=auth)
    assert batch.status_code == 200, batch.text
    batch_id = batch.json()["batchId"]
    with path.open("rb") as fh:
        resp = h.client.post(f"/api/adm/import/file?batchId={batch_id}", files={"file": (path.name, fh)}, headers=auth)
    assert resp.status_code == 200 and resp.json()["success"] is True, resp.text
    from events import catalog
    from events.db import read_tx

    with read_tx(h.rt.engine) as conn:
        tenant = catalog.tenant_by_name(conn, "admin-co")
        assert tenant is not None
        row = catalog.ticket_by_dedup(conn, tenant.id, f"batch:{batch_id}")
    assert row is not None
    return row.id


def test_the_same_file_through_every_front_door_ends_in_the_same_records(harness: Harness, tmp_path: Path, site: Site) -> None:  # noqa: F811
    path = write_csv(tmp_path / "agree.csv", _rows())
    tickets = {
        ("native-co", "contacts"): _native(harness, path),
        ("yesmail-co", "contacts"): _yesmail(harness, path, site),
        ("thalamus-co", "partner_sales"): _thalamus(harness, path),
        ("teamtracks-co", "rma"): _teamtracks(harness, path),
        ("admin-co", "transactions"): _admin(harness, path),
    }
    views = {k: harness.wait(t) for k, t in tickets.items()}
    expected = harness.records("native-co", "contacts")
    assert len(expected) == 1198
    for (tenant, dataset), view in views.items():
        assert view.state == "completed", (tenant, view.reason)
        assert (view.total_rows, view.created, view.failed) == (1200, 1198, 2), tenant
        assert harness.records(tenant, dataset) == expected, tenant


def test_openapi_lists_every_dialect_endpoint_with_its_parameters(embedded: Harness) -> None:
    schema = embedded.client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/imports", "/imports/{ticket}", "/datasets/{name}",
        "/v2/reference-data/{dataset}/records/file-import", "/v2/tickets/{id}", "/v2/async-results/{id}",
        "/api/v4/import/file", "/api/v4/import/status/{id}",
        "/objectimport/{trackId}", "/job/{jobId}",
        "/api/adm/import/file", "/api/admin/importBatches/file", "/api/adm/import/batch", "/api/adm/import/entries",
    ):
        assert any(p.rstrip("/") == path for p in paths), f"{path} missing from /schema"
    params = {p["name"] for op in paths["/api/v4/import/file"].values() for p in op.get("parameters", [])}
    assert {"name", "type", "touchpoint", "token"} <= params
    params = {p["name"] for op in paths["/job/{jobId}"].values() for p in op.get("parameters", [])}
    assert {"tenant", "Ocp-Apim-Subscription-Key"} <= params
