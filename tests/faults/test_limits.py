"""Parsing limits an outside probe broke: JSON bodies (credentials first, a size cap, a depth bound),
integers no column can hold, over-long multipart boundaries. Each is a 4xx in the door's own shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.ops import issue_operator_token
from events.db import write_tx
from tests.support import Harness, contacts, write_csv

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 2000 + b"1" + b"}" * 2000


class Doors:
    """One embedded service, a tenant with credentials for every door, one finished import."""

    def __init__(self, h: Harness, tmp: Path) -> None:
        self.h = h
        self.creds = h.tenant("acme")
        for name in ("contacts", "partner_sales", "rma", "transactions"):
            h.dataset("acme", name)
        with write_tx(h.rt.engine) as conn:
            self.operator = {"Authorization": f"Bearer {issue_operator_token(conn)}"}
        resp = h.upload(self.creds["native"]["token"], write_csv(tmp / "c.csv", contacts(3)), dataset="contacts")
        self.ticket = resp.json()["id"]
        h.wait(self.ticket)

    @property
    def native(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['native']['token']}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['admin']['bearer_token']}"}

    @property
    def yesmail(self) -> dict[str, str]:
        return {"Api-User": self.creds["yesmail"]["api_user"], "Api-Key": self.creds["yesmail"]["api_key"]}

    @property
    def thalamus(self) -> dict[str, str]:
        c = self.creds["thalamus"]
        return {"Thalamus-Touchpoint": c["touchpoint"], "Thalamus-Token": c["token"]}

    @property
    def teamtracks(self) -> dict[str, str]:
        t = self.creds["teamtracks"]
        return {"tenant": t["tenant"], "Ocp-Apim-Subscription-Key": t["subscription_key"], "Authorization": f"Bearer {t['bearer_token']}"}


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    tmp = tmp_path_factory.mktemp("limits")
    h = Harness.start(tmp, database_url=f"sqlite:///{tmp / 'importer.db'}")
    try:
        yield Doors(h, tmp)
    finally:
        h.stop()


def _message(door: str, body: dict[str, Any]) -> str:
    """The refusal's sentence, read from the door's own error shape (which it must have)."""
    if door == "admin":
        assert body["success"] is False and isinstance(body["code"], int)
        return str(body["errorMessage"])
    if door == "yesmail":
        assert isinstance(body["error"]["status"], int)
        return str(body["error"]["message"])
    assert isinstance(body["error"]["code"], str)
    return str(body["error"]["message"])


# Every route that takes a JSON body: (door, method, path, credentials attribute).
JSON_ROUTES = [
    ("native", "PUT", "/datasets/newset", "native"),
    ("native", "POST", "/imports", "native"),
    ("yesmail", "POST", "/v2/reference-data/contacts/records/file-import", "yesmail"),
    ("admin", "POST", "/api/adm/import/batch", "admin"),
    ("admin", "POST", "/api/admin/importBatches", "admin"),
]
IDS = [f"{m} {p}" for _, m, p, _ in JSON_ROUTES]


@pytest.mark.parametrize(("door", "method", "path", "creds"), JSON_ROUTES, ids=IDS)
def test_json_routes_answer_401_before_they_look_at_the_body(doors: Doors, door: str, method: str, path: str, creds: str) -> None:
    for body in (DEEP, b"{not json", b'{"a": "' + b"x" * 200_000 + b'"}'):
        resp = doors.h.client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 401, (body[:20], resp.text)
        _message(door, resp.json())


@pytest.mark.parametrize(("door", "method", "path", "creds"), JSON_ROUTES, ids=IDS)
def test_json_bodies_are_capped_at_64_kb(doors: Doors, door: str, method: str, path: str, creds: str) -> None:
    auth = getattr(doors, creds)
    big = b'{"a": "' + b"x" * 70_000 + b'"}'
    for extra in ({}, {"Transfer-Encoding": "chunked"}):  # declared, and found while streaming
        content: Any = big if not extra else iter([big[:30_000], big[30_000:]])
        resp = doors.h.client.request(method, path, content=content, headers={**auth, "Content-Type": "application/json", **extra})
        assert resp.status_code == (400 if door == "admin" else 413), resp.text  # admin: its doc's one refusal status
        assert "larger than 64 KB" in _message(door, resp.json())


@pytest.mark.parametrize(("door", "method", "path", "creds"), JSON_ROUTES, ids=IDS)
def test_deeply_nested_json_is_a_400_not_a_500(doors: Doors, door: str, method: str, path: str, creds: str) -> None:
    auth = getattr(doors, creds)
    for body in (DEEP, DEEP_OBJECT, b'{"source": ' + DEEP + b"}"):
        resp = doors.h.client.request(method, path, content=body, headers={**auth, "Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert "nests deeper than 32 levels" in _message(door, resp.json())


def test_json_bodies_within_the_limits_still_work(doors: Doors) -> None:
    schema = {"fields": [{"name": "email", "type": "email", "required": True}], "key": ["email"]}
    resp = doors.h.client.put("/datasets/within", json=schema, headers=doors.native)
    assert resp.status_code == 201, resp.text
    resp = doors.h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=doors.admin)
    assert resp.status_code == 200 and resp.json()["batchId"]


@pytest.mark.parametrize("offset", [2**63, 2**64 + 5, 10**30])
def test_a_results_offset_past_any_file_is_a_400(doors: Doors, offset: int) -> None:
    resp = doors.h.client.get(f"/imports/{doors.ticket}/results?offset={offset}", headers=doors.native)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"]
    ok = doors.h.client.get(f"/imports/{doors.ticket}/results?offset={2**53}", headers=doors.native)
    assert ok.status_code == 200 and ok.json()["items"] == []


@pytest.mark.parametrize("how", ["after", "last-event-id", "last-event-id+sse", "after+sse"])
def test_an_events_cursor_no_seq_can_reach_is_a_400_also_for_a_stream(doors: Doors, how: str) -> None:
    url = f"/ops/imports/{doors.ticket}/events"
    headers = dict(doors.operator)
    if how.endswith("+sse"):
        headers["Accept"] = "text/event-stream"
    if how.startswith("after"):
        url += f"?after={10**30}"
    else:
        headers["Last-Event-ID"] = str(10**30)
    resp = doors.h.client.get(url, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == "after"


# Every upload route: (door, path, credentials attribute, query).
UPLOADS = [
    ("native", "/imports", "native", {}),
    ("thalamus", "/api/v4/import/file", "thalamus", {"name": "n1", "type": "25011"}),
    ("teamtracks", "/objectimport/rma", "teamtracks", {}),
    ("admin", "/api/adm/import/file", "admin", None),
]


@pytest.mark.parametrize(("door", "path", "creds", "query"), UPLOADS, ids=[u[0] for u in UPLOADS])
@pytest.mark.parametrize("length", [257, 300, 5000])
def test_an_over_long_multipart_boundary_is_a_400_on_every_upload_route(
    doors: Doors, door: str, path: str, creds: str, query: dict[str, str] | None, length: int
) -> None:
    if query is None:
        batch = doors.h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=doors.admin).json()["batchId"]
        query = {"batchId": batch}
    boundary = "b" * length
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nemail\r\n--{boundary}--\r\n"
    resp = doors.h.client.post(
        path, params=query, content=body.encode(), headers={**getattr(doors, creds), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert resp.status_code == 400, resp.text
    if door == "thalamus":
        assert resp.json()["errors"]
    elif door == "teamtracks":
        assert resp.json()["message"]
    else:
        assert "malformed multipart body" in _message(door, resp.json())
